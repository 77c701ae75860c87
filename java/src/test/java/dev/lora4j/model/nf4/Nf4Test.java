package dev.lora4j.model.nf4;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.nativ.NativeEngine;
import dev.lora4j.safetensors.DType;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link Nf4} against a reference written here from the published definition (QLoRA; bitsandbytes'
 * quantize_4bit / quantize_blockwise): nearest value by exhaustive search instead of thresholds,
 * nibbles packed by hand, the double quantization's mean, blocks of 256 and 8-bit codes; and the
 * dequantization of the Java side, the reference and the native core, bit for bit.
 */
class Nf4Test {
  /** The NF4 values as published (QLoRA, appendix E / bitsandbytes' get_4bit_type("nf4")). */
  static final double[] NF4 = {
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0
  };

  /** Index of the nearest table value; the lower index on a tie (argmin's first). */
  static int nearest(float x, float[] table) {
    int best = 0;
    float bestD = Math.abs(x - table[0]);
    for (int i = 1; i < table.length; i++) {
      float d = Math.abs(x - table[i]);
      if (d < bestD) {
        best = i;
        bestD = d;
      }
    }
    return best;
  }

  record Ref(
      byte[] codes, float[] absmax, byte[] absmaxCodes, float[] nestedAbsmax, float offset) {}

  static Ref reference(float[] x, int bs, boolean nested) {
    float[] table = new float[16];
    for (int i = 0; i < 16; i++) table[i] = (float) NF4[i];
    int blocks = (x.length + bs - 1) / bs;
    float[] absmax = new float[blocks];
    int[] code = new int[x.length + 1];
    for (int b = 0; b < blocks; b++) {
      for (int i = b * bs; i < Math.min(x.length, (b + 1) * bs); i++) {
        absmax[b] = Math.max(absmax[b], Math.abs(x[i]));
      }
      float inv = 1f / absmax[b];
      for (int i = b * bs; i < Math.min(x.length, (b + 1) * bs); i++) {
        code[i] = absmax[b] == 0f ? 7 : nearest(Math.max(-1f, Math.min(1f, x[i] * inv)), table);
      }
    }
    byte[] packed = new byte[(x.length + 1) / 2];
    for (int j = 0; j < packed.length; j++) packed[j] = (byte) (code[2 * j] * 16 + code[2 * j + 1]);
    if (!nested) return new Ref(packed, absmax, null, null, 0f);
    double sum = 0;
    for (float a : absmax) sum += a;
    float offset = (float) (sum / blocks);
    float[] dyn = Nf4.dynamicTable();
    int nb = (blocks + 255) / 256;
    float[] nestedAbsmax = new float[nb];
    byte[] codes8 = new byte[blocks];
    for (int k = 0; k < nb; k++) {
      for (int b = 256 * k; b < Math.min(blocks, 256 * (k + 1)); b++) {
        nestedAbsmax[k] = Math.max(nestedAbsmax[k], Math.abs(absmax[b] - offset));
      }
      float inv = 1f / nestedAbsmax[k];
      for (int b = 256 * k; b < Math.min(blocks, 256 * (k + 1)); b++) {
        codes8[b] = (byte) nearest(Math.max(-1f, Math.min(1f, (absmax[b] - offset) * inv)), dyn);
      }
    }
    return new Ref(packed, absmax, codes8, nestedAbsmax, offset);
  }

  static float[] randomWeights(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      // bf16 values, as checkpoints hold them; a few blocks with outliers
      double v = r.nextGaussian() * 0.02 * (r.nextInt(50) == 0 ? 20 : 1);
      x[i] = DType.bf16ToFloat(DType.floatToBf16((float) v));
    }
    return x;
  }

  @Test
  void tableIsTheNf4Table() {
    float[] t = Nf4.table();
    for (int i = 0; i < 16; i++) assertEquals((float) NF4[i], t[i], "NF4 value " + i);
  }

  @Test
  void dynamicTableIsBitsandbytesSignedDynamicMap() {
    float[] d = Nf4.dynamicTable();
    assertEquals(256, d.length);
    for (int i = 1; i < 256; i++) assertTrue(d[i - 1] < d[i], "sorted and distinct at " + i);
    assertEquals(0f, d[127]);
    assertEquals(1f, d[255]);
    // the largest fraction mean of exponent 0: (linspace(0.1, 1, 65)[63] + 1) / 2
    assertEquals(0.99296875f, d[254], 1e-7f);
    assertEquals(-0.99296875f, d[0], 1e-7f);
    // the smallest: 1e-6 * (0.1 + 1) / 2
    assertEquals(5.5e-7f, d[128], 1e-12f);
    assertEquals(-5.5e-7f, d[126], 1e-12f);
    // exponent 10^-1 has 2^5 means of linspace(0.1, 1, 33): the first is 0.1 * 0.11406250
    int count = 0;
    for (float v : d) if (v > 0.01f - 1e-9f && v < 0.1f) count++;
    assertEquals(32, count, "values in (0.01, 0.1): the 2^5 means of exponent 10^-1");
  }

  @Test
  void earlierElementInTheHighNibble() {
    float[] x = new float[64];
    x[0] = 1f; // code 15
    x[1] = -1f; // code 0
    x[2] = 0.08f; // nearest 0.0796: code 8
    x[3] = -0.1f; // nearest -0.0911: code 6
    Nf4Tensor t = Nf4.quantize(x, new long[] {1, 64}, DType.F32, 64, false);
    assertEquals((byte) 0xF0, t.codes()[0]);
    assertEquals((byte) 0x86, t.codes()[1]);
    assertEquals((byte) 0x77, t.codes()[2], "zeros are code 7");
    assertArrayEquals(new float[] {1f}, t.absmax());
    assertEquals(15, t.code(0));
    assertEquals(0, t.code(1));
  }

  @Test
  void blockOrderAndPartialLastBlock() {
    // 3 x 43 = 129 elements: blocks of 64 elements [0, 64), [64, 128), [128, 129); odd count
    float[] x = new float[129];
    for (int i = 0; i < 129; i++) x[i] = i < 64 ? 0.5f : i < 128 ? -2f : 8f;
    x[10] = 1f;
    Nf4Tensor t = Nf4.quantize(x, new long[] {3, 43}, DType.F32, 64, false);
    assertArrayEquals(new float[] {1f, 2f, 8f}, t.absmax());
    assertEquals(65, t.codes().length);
    assertEquals((byte) 0xF0, t.codes()[64], "the last element high, the pad nibble 0");
    float[] back = t.dequantize();
    assertEquals(8f, back[128]);
    assertEquals(-2f, back[100]);
    assertEquals(1f, back[10]);
  }

  @Test
  void quantizeMatchesTheDefinitionOnRandomTensors() {
    long seed = 1;
    for (long[] shape : new long[][] {{7, 37}, {64, 300}, {130, 300}, {1, 2}, {3, 1025}}) {
      int n = (int) (shape[0] * shape[1]);
      for (boolean nested : new boolean[] {false, true}) {
        for (int bs : new int[] {64, 128}) {
          float[] x = randomWeights(n, ++seed);
          Nf4Tensor t = Nf4.quantize(x, shape, DType.BF16, bs, nested);
          Ref r = reference(x, bs, nested);
          String what =
              java.util.Arrays.toString(shape) + " block " + bs + (nested ? " nested" : "");
          assertArrayEquals(r.codes(), t.codes(), "codes " + what);
          if (nested) {
            assertNull(t.absmax());
            assertArrayEquals(r.absmaxCodes(), t.absmaxCodes(), "absmax codes " + what);
            assertArrayEquals(r.nestedAbsmax(), t.nestedAbsmax(), "nested absmax " + what);
            assertEquals(r.offset(), t.offset(), "offset " + what);
            assertEquals(256, t.nestedBlocksize());
            assertArrayEquals(Nf4.dynamicTable(), t.nestedTable());
          } else {
            assertArrayEquals(r.absmax(), t.absmax(), "absmax " + what);
            assertNull(t.absmaxCodes());
          }
        }
      }
    }
  }

  @Test
  void dequantizeMatchesTheDefinitionAndTheNativeCore() {
    long seed = 100;
    for (boolean nested : new boolean[] {false, true}) {
      for (DType dt : new DType[] {DType.BF16, DType.F16, DType.F32}) {
        float[] x = randomWeights(130 * 300, ++seed);
        Nf4Tensor t = Nf4.quantize(x, new long[] {130, 300}, dt, 64, nested);
        Ref r = reference(x, 64, nested);
        float[] table = Nf4.table(), dyn = Nf4.dynamicTable();
        float[] want = new float[x.length];
        for (int i = 0; i < x.length; i++) {
          int b = i / 64;
          float scale =
              nested
                  ? dyn[r.absmaxCodes()[b] & 0xFF] * r.nestedAbsmax()[b / 256] + r.offset()
                  : r.absmax()[b];
          int c = (i % 2 == 0 ? (r.codes()[i / 2] >> 4) : r.codes()[i / 2]) & 15;
          float v = table[c] * scale;
          want[i] =
              dt == DType.BF16
                  ? DType.bf16ToFloat(DType.floatToBf16(v))
                  : dt == DType.F16 ? DType.f16ToFloat(DType.floatToF16(v)) : v;
        }
        String what = dt + (nested ? " nested" : " plain");
        float[] java = t.dequantize();
        assertArrayEquals(want, java, "Java dequantize " + what);
        assertArrayEquals(want, NativeEngine.dequantize(t), "native lora4j_nf4_dequantize " + what);
        // and it is a quantization: each weight within half the widest NF4 gap of its block
        float[] scales = t.scales();
        for (int i = 0; i < x.length; i++) {
          float a = r.absmax()[i / 64], sc = scales[i / 64];
          // half the widest NF4 gap, the scale's own quantization error, the dtype's rounding
          float tol = 0.152f * a + Math.abs(sc - a) + Math.abs(sc) / 128 + 1e-7f;
          assertTrue(
              Math.abs(java[i] - x[i]) <= tol,
              what + ": element " + i + " " + x[i] + " -> " + java[i]);
        }
      }
    }
  }

  @Test
  void allZeroBlockDequantizesToZero() {
    float[] x = new float[128];
    x[100] = 0.5f;
    Nf4Tensor t = Nf4.quantize(x, new long[] {2, 64}, DType.BF16, 64, true);
    float[] back = t.dequantize();
    assertNotNull(t.absmaxCodes());
    assertEquals((byte) 0x77, t.codes()[0], "a block of zeros is all code 7 (0.0)");
    // its double-quantized scale is not 0 (the 8-bit table has no -1), the weights still are
    assertTrue(t.scales()[0] != 0f);
    for (int i = 0; i < 64; i++) assertEquals(0f, back[i]);
    assertEquals(0.5f, back[100], 0.01f);
  }
}
