package dev.lora4j.model.nf4;

import dev.lora4j.safetensors.DType;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * NF4 quantization exactly as bitsandbytes defines it (QLoRA, Dettmers et al. 2023; {@code
 * bitsandbytes.functional.quantize_4bit} with {@code quant_type="nf4"}):
 *
 * <ul>
 *   <li>the row-major elements are cut into blocks of {@code blocksize} (64); each block's scale is
 *       its absmax, the largest |x| (fp32);
 *   <li>each element becomes the 4-bit index of the NF4 value nearest to {@code x * (1 / absmax)}
 *       (fp32, clamped to [-1, 1]); the decision thresholds are the midpoints of neighbouring
 *       values, and a value on a midpoint takes the lower code, as bitsandbytes' CUDA kernel
 *       decides; a block of zeros is all code 7 (0.0);
 *   <li>two codes per byte, the earlier element in the high nibble; an odd count pads the last low
 *       nibble with 0;
 *   <li>double quantization ({@code compress_statistics}): the absmax values less their mean
 *       ({@code offset}, fp32) are quantized again in blocks of 256 with the 8-bit signed dynamic
 *       code ({@code create_dynamic_map()}): each to the nearest of its 256 values (a midpoint
 *       takes the lower), scaled by the block's own absmax ({@code nested_absmax}).
 * </ul>
 *
 * Dequantization is {@code code_table[c] * scale}, in fp32, rounded to the weight's dtype.
 */
public final class Nf4 {
  /**
   * The block sizes bitsandbytes quantizes and dequantizes with (its kernels take no other): a
   * checkpoint of another would load nowhere else, and one is not written.
   */
  public static final java.util.Set<Integer> BNB_BLOCKSIZES =
      java.util.Collections.unmodifiableSet(
          new java.util.TreeSet<>(java.util.List.of(32, 64, 128, 256, 512, 1024, 2048, 4096)));

  private Nf4() {}

  /** Weights per absmax in bitsandbytes' 4-bit quantization. */
  public static final int BLOCKSIZE = 64;

  /** Absmax values per nested absmax in bitsandbytes' double quantization. */
  public static final int NESTED_BLOCKSIZE = 256;

  private static final float[] TABLE = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f
  };

  /** Midpoints between neighbouring NF4 values: x above MID[k] has a code above k. */
  private static final float[] MID = new float[15];

  private static final float[] DYNAMIC = dynamicMap();

  static {
    for (int k = 0; k < 15; k++) MID[k] = (float) (((double) TABLE[k] + TABLE[k + 1]) / 2);
  }

  /**
   * @return a copy of the 16 NF4 values (bitsandbytes' {@code quant_map} of an nf4 weight)
   */
  public static float[] table() {
    return TABLE.clone();
  }

  /**
   * The 256 values of bitsandbytes' signed 8-bit dynamic code ({@code create_dynamic_map(signed=
   * True, max_exponent_bits=7, total_bits=8)}), the {@code nested_quant_map} of double-quantized
   * weights: for i = 0..6, the midpoints of {@code linspace(0.1, 1, 2^i + 1)} (fp32, as torch
   * computes it) times 10^(i - 6), with both signs; then 0 and 1; sorted.
   *
   * @return a copy of the table
   */
  public static float[] dynamicTable() {
    return DYNAMIC.clone();
  }

  private static float[] dynamicMap() {
    float[] out = new float[256];
    int n = 0;
    for (int i = 0; i < 7; i++) {
      int items = (1 << i) + 1;
      float[] b = linspace(0.1f, 1.0f, items);
      double pow = Math.pow(10, -6 + i); // a Python float times an fp32 tensor: fp32 product
      float scale = (float) pow;
      for (int k = 0; k + 1 < items; k++) {
        float mean = (b[k] + b[k + 1]) / 2.0f;
        float v = scale * mean;
        out[n++] = v;
        out[n++] = -v;
      }
    }
    out[n++] = 0f;
    out[n++] = 1.0f;
    if (n != 256) throw new AssertionError("dynamic map has " + n + " values");
    Arrays.sort(out);
    return out;
  }

  /** torch.linspace in fp32: start + i * step below the middle, end - (steps - 1 - i) * step. */
  static float[] linspace(float start, float end, int steps) {
    float[] r = new float[steps];
    if (steps == 1) {
      r[0] = start;
      return r;
    }
    float step = (end - start) / (steps - 1);
    int half = steps / 2;
    for (int i = 0; i < steps; i++) {
      r[i] = i < half ? start + step * i : end - step * (steps - i - 1);
    }
    return r;
  }

  /** The 4-bit code of a normalized value: the nearest NF4 value, a midpoint going down. */
  static int code(float x) {
    int lo = 0;
    // 15 thresholds, sorted: the code is the number of thresholds strictly below x
    while (lo < 15 && x > MID[lo]) lo++;
    return lo;
  }

  /** The 8-bit dynamic code of a normalized value: the nearest, a midpoint going down. */
  static int dynamicCode(float x) {
    int lo = 0, hi = 255;
    if (x <= DYNAMIC[0]) return 0;
    if (x >= DYNAMIC[255]) return 255;
    while (hi - lo > 1) { // DYNAMIC[lo] < x <= DYNAMIC[hi]
      int mid = (lo + hi) >>> 1;
      if (DYNAMIC[mid] < x) lo = mid;
      else hi = mid;
    }
    float dLo = x - DYNAMIC[lo], dHi = DYNAMIC[hi] - x;
    return dHi < dLo ? hi : lo;
  }

  /**
   * Quantizes a weight.
   *
   * @param values the weight's elements, row-major (exactly the checkpoint's values)
   * @param shape its shape, [out, in]
   * @param dtype the dtype it was stored in (bitsandbytes' quant_state "dtype": what dequantization
   *     rounds to)
   * @param blocksize elements per absmax (64)
   * @param doubleQuant quantize the absmax values again (blocks of 256, 8-bit dynamic code)
   * @return the NF4 tensor
   */
  public static Nf4Tensor quantize(
      float[] values, long[] shape, DType dtype, int blocksize, boolean doubleQuant) {
    long numel = 1;
    for (long d : shape) numel *= d;
    if (numel != values.length) {
      throw new IllegalArgumentException(
          "shape " + Arrays.toString(shape) + " has " + numel + " elements, got " + values.length);
    }
    if (!BNB_BLOCKSIZES.contains(blocksize)) {
      throw new IllegalArgumentException(
          "blocksize must be one bitsandbytes uses " + BNB_BLOCKSIZES + ", got " + blocksize);
    }
    final int n = values.length;
    final int blocks = (n + blocksize - 1) / blocksize;
    float[] absmax = new float[blocks];
    byte[] codes = new byte[(n + 1) / 2];
    // blocksize is even: a block covers whole bytes, so blocks can be done in parallel
    IntStream.range(0, blocks)
        .parallel()
        .forEach(
            b -> {
              int lo = b * blocksize, hi = Math.min(n, lo + blocksize);
              float m = 0f;
              for (int i = lo; i < hi; i++) m = Math.max(m, Math.abs(values[i]));
              absmax[b] = m;
              float inv = 1.0f / m; // bitsandbytes multiplies by the reciprocal
              for (int i = lo; i < hi; i += 2) {
                int c0 = m == 0f ? ZERO_CODE : code(normalize(values[i], inv));
                int c1 =
                    i + 1 >= hi ? 0 : m == 0f ? ZERO_CODE : code(normalize(values[i + 1], inv));
                codes[i >> 1] = (byte) (c0 << 4 | c1);
              }
            });
    if (!doubleQuant) {
      return Nf4Tensor.plain(shape, dtype, blocksize, codes, TABLE.clone(), absmax);
    }
    double sum = 0;
    for (float a : absmax) sum += a;
    float offset = (float) (sum / blocks);
    int nested = (blocks + NESTED_BLOCKSIZE - 1) / NESTED_BLOCKSIZE;
    float[] nestedAbsmax = new float[nested];
    byte[] absmaxCodes = new byte[blocks];
    for (int nb = 0; nb < nested; nb++) {
      int lo = nb * NESTED_BLOCKSIZE, hi = Math.min(blocks, lo + NESTED_BLOCKSIZE);
      float m = 0f;
      for (int b = lo; b < hi; b++) m = Math.max(m, Math.abs(absmax[b] - offset));
      nestedAbsmax[nb] = m;
      float inv = 1.0f / m;
      for (int b = lo; b < hi; b++) {
        absmaxCodes[b] = (byte) dynamicCode(normalize(absmax[b] - offset, inv));
      }
    }
    return Nf4Tensor.nested(
        shape,
        dtype,
        blocksize,
        codes,
        TABLE.clone(),
        absmaxCodes,
        DYNAMIC.clone(),
        nestedAbsmax,
        NESTED_BLOCKSIZE,
        offset);
  }

  /**
   * The code of 0.0. An all-zero block takes it for every element, so that it dequantizes to
   * exactly 0 even when its double-quantized scale is not 0 (bitsandbytes' kernel computes 0 * (1 /
   * 0) = NaN there and stores code 0, -1.0, which a double-quantized scale of about 1.8e-3 x the
   * nested absmax turns into small non-zero weights).
   */
  static final int ZERO_CODE = 7;

  /** x * inv clamped to [-1, 1] (NaN only for an all-zero 8-bit block, which takes code 0). */
  private static float normalize(float x, float inv) {
    float v = x * inv;
    if (Float.isNaN(v)) return v;
    return Math.max(-1f, Math.min(1f, v));
  }
}
