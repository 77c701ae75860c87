package dev.lora4j.model.nf4;

import dev.lora4j.safetensors.DType;
import java.util.Arrays;

/**
 * One weight in NF4, as bitsandbytes stores it: the packed codes ({@code weight}), the 16-value
 * code table ({@code weight.quant_map}), and the block scales, either plain fp32 ({@code
 * weight.absmax}) or double-quantized ({@code weight.absmax} as uint8 codes, {@code
 * weight.nested_quant_map}, {@code weight.nested_absmax} and the {@code nested_offset} of the quant
 * state). See {@link Nf4} for the definition.
 *
 * @param shape the weight's shape, [out, in]
 * @param dtype the dtype dequantization rounds to (bitsandbytes' quant_state "dtype")
 * @param blocksize elements per scale
 * @param codes (numel + 1) / 2 bytes, the earlier element in the high nibble
 * @param table the 16 values a code stands for
 * @param absmax fp32 scales, one per block; null when double-quantized
 * @param absmaxCodes the scales' 8-bit codes (double-quantized), else null
 * @param nestedTable the 256 values an absmax code stands for, else null
 * @param nestedAbsmax one per nestedBlocksize scales, else null
 * @param nestedBlocksize scales per nested absmax (256), 0 when not double-quantized
 * @param offset added to every dequantized scale (double-quantized), else 0
 */
public record Nf4Tensor(
    long[] shape,
    DType dtype,
    int blocksize,
    byte[] codes,
    float[] table,
    float[] absmax,
    byte[] absmaxCodes,
    float[] nestedTable,
    float[] nestedAbsmax,
    int nestedBlocksize,
    float offset) {

  public Nf4Tensor {
    shape = shape.clone();
  }

  static Nf4Tensor plain(
      long[] shape, DType dtype, int blocksize, byte[] codes, float[] table, float[] absmax) {
    return new Nf4Tensor(shape, dtype, blocksize, codes, table, absmax, null, null, null, 0, 0f);
  }

  static Nf4Tensor nested(
      long[] shape,
      DType dtype,
      int blocksize,
      byte[] codes,
      float[] table,
      byte[] absmaxCodes,
      float[] nestedTable,
      float[] nestedAbsmax,
      int nestedBlocksize,
      float offset) {
    return new Nf4Tensor(
        shape,
        dtype,
        blocksize,
        codes,
        table,
        null,
        absmaxCodes,
        nestedTable,
        nestedAbsmax,
        nestedBlocksize,
        offset);
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /**
   * @return whether the scales are double-quantized
   */
  public boolean isNested() {
    return absmax == null;
  }

  /**
   * @return the number of elements
   */
  public long numel() {
    long n = 1;
    for (long d : shape) n *= d;
    return n;
  }

  /**
   * @return the number of scale blocks, ceil(numel / blocksize)
   */
  public int blocks() {
    return (int) ((numel() + blocksize - 1) / blocksize);
  }

  /**
   * @return the 4-bit code of element i
   */
  public int code(long i) {
    int b = codes[(int) (i >>> 1)] & 0xFF;
    return (i & 1) == 0 ? b >>> 4 : b & 0x0F;
  }

  /**
   * The block scales: absmax, or {@code nestedTable[absmaxCodes[b]] * nestedAbsmax[b /
   * nestedBlocksize] + offset} with each operation rounded to fp32.
   *
   * @return one scale per block
   */
  public float[] scales() {
    if (absmax != null) return absmax.clone();
    float[] s = new float[blocks()];
    for (int b = 0; b < s.length; b++) {
      float p = nestedTable[absmaxCodes[b] & 0xFF] * nestedAbsmax[b / nestedBlocksize];
      s[b] = p + offset;
    }
    return s;
  }

  /**
   * The weight bitsandbytes' dequantize_4bit returns: {@code table[code] * scale} (fp32), rounded
   * to {@link #dtype()}, as floats.
   *
   * @return numel values, row-major
   */
  public float[] dequantize() {
    float[] s = scales();
    int n = Math.toIntExact(numel());
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      float v = table[code(i)] * s[i / blocksize];
      out[i] =
          switch (dtype) {
            case BF16 -> DType.bf16ToFloat(DType.floatToBf16(v));
            case F16 -> DType.f16ToFloat(DType.floatToF16(v));
            default -> v;
          };
    }
    return out;
  }

  /**
   * Bytes this weight takes in 4 bits: the codes, the code table, and the scales (fp32 each, or one
   * byte each plus the nested table and absmax values).
   *
   * @return the bytes of its bitsandbytes tensors, the quant state's JSON excepted
   */
  public long bytes() {
    return bytes(numel(), blocksize, isNested(), nestedBlocksize);
  }

  /**
   * Bytes a weight of numel elements takes in NF4 (see {@link #bytes()}).
   *
   * @param numel elements
   * @param blocksize elements per scale
   * @param nested double-quantized scales
   * @param nestedBlocksize scales per nested absmax
   * @return the bytes
   */
  public static long bytes(long numel, int blocksize, boolean nested, int nestedBlocksize) {
    long blocks = (numel + blocksize - 1) / blocksize;
    long b = (numel + 1) / 2 + 16L * 4;
    if (!nested) return b + 4 * blocks;
    return b + blocks + 256L * 4 + 4 * ((blocks + nestedBlocksize - 1) / nestedBlocksize);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Nf4Tensor t
        && Arrays.equals(shape, t.shape)
        && dtype == t.dtype
        && blocksize == t.blocksize
        && Arrays.equals(codes, t.codes)
        && Arrays.equals(table, t.table)
        && Arrays.equals(absmax, t.absmax)
        && Arrays.equals(absmaxCodes, t.absmaxCodes)
        && Arrays.equals(nestedTable, t.nestedTable)
        && Arrays.equals(nestedAbsmax, t.nestedAbsmax)
        && nestedBlocksize == t.nestedBlocksize
        && Float.floatToIntBits(offset) == Float.floatToIntBits(t.offset);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(codes) * 31 + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return "Nf4Tensor"
        + Arrays.toString(shape)
        + " "
        + dtype
        + " block "
        + blocksize
        + (isNested() ? " double-quantized" : "");
  }
}
