package dev.lora4j.gguf;

import dev.lora4j.safetensors.DType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

/**
 * The ggml tensor types lora4j writes into GGUF files, with ggml's type ids and block layouts.
 *
 * <p>{@code Q8_0} is ggml's block of 32 weights: one fp16 scale {@code d = max|x| / 127} followed
 * by 32 signed bytes {@code round(x / d)} (34 bytes per block), rounding half away from zero as C's
 * {@code roundf}, the reference quantizer of ggml ({@code quantize_row_q8_0_ref}) that llama.cpp's
 * converter reproduces. A row is a whole number of blocks, so Q8_0 needs rows of a multiple of 32.
 */
public enum GgmlType {
  F32(0, 1, 4),
  F16(1, 1, 2),
  Q8_0(8, 32, 34),
  BF16(30, 1, 2);

  /** Weights per Q8_0 block. */
  public static final int QK8_0 = 32;

  private final int id;
  private final int blockSize;
  private final int typeSize;

  GgmlType(int id, int blockSize, int typeSize) {
    this.id = id;
    this.blockSize = blockSize;
    this.typeSize = typeSize;
  }

  /**
   * @return ggml's numeric id of the type (the value stored in a GGUF tensor info)
   */
  public int id() {
    return id;
  }

  /**
   * @return elements per block (32 for Q8_0, else 1)
   */
  public int blockSize() {
    return blockSize;
  }

  /**
   * @return bytes per block
   */
  public int typeSize() {
    return typeSize;
  }

  /**
   * @return the type with this ggml id, or null when lora4j does not know it
   */
  public static GgmlType byId(int id) {
    for (GgmlType t : values()) {
      if (t.id == id) return t;
    }
    return null;
  }

  /**
   * @return whether a row of n elements can be stored in this type
   */
  public boolean fitsRow(long n) {
    return n % blockSize == 0;
  }

  /**
   * @param elements number of elements, a multiple of {@link #blockSize()}
   * @return their size in bytes
   */
  public long bytes(long elements) {
    if (elements % blockSize != 0) {
      throw new IllegalArgumentException(
          elements + " elements is not a whole number of " + this + " blocks");
    }
    return elements / blockSize * typeSize;
  }

  /**
   * Encodes float values in this type, little-endian.
   *
   * @param x the values; their number must be a multiple of {@link #blockSize()}
   * @return {@link #bytes(long)} bytes
   */
  public byte[] encode(float[] x) {
    return encode(x, 0, x.length);
  }

  /**
   * Encodes values [start, end) of x in this type, little-endian.
   *
   * @return {@link #bytes(long)} of end - start bytes (at most an array's length: larger tensors go
   *     through {@link #encodeParts})
   */
  public byte[] encode(float[] x, int start, int end) {
    byte[] out = new byte[Math.toIntExact(bytes(end - start))];
    // slices of whole blocks, encoded in parallel (a 7B model has 7e9 weights to convert)
    int slice = blockSize * 4096;
    int slices = (end - start + slice - 1) / slice;
    IntStream.range(0, slices)
        .parallel()
        .forEach(
            s -> {
              int from = start + s * slice, to = Math.min(end, from + slice);
              ByteBuffer b =
                  ByteBuffer.wrap(out, (int) bytes(from - start), (int) bytes(to - from))
                      .order(ByteOrder.LITTLE_ENDIAN);
              switch (this) {
                case F32 -> {
                  for (int i = from; i < to; i++) b.putFloat(x[i]);
                }
                case F16 -> {
                  for (int i = from; i < to; i++) b.putShort(DType.floatToF16(x[i]));
                }
                case BF16 -> {
                  for (int i = from; i < to; i++) b.putShort(DType.floatToBf16(x[i]));
                }
                case Q8_0 -> {
                  for (int i = from; i < to; i += QK8_0) quantizeBlockQ8_0(x, i, b);
                }
              }
            });
    return out;
  }

  /** Bytes of one part of {@link #encodeParts} at most. */
  static final long PART_BYTES = 1L << 30;

  /**
   * Encodes all of x in parts of whole blocks, each at most {@link #PART_BYTES} (a tensor of more
   * than 2 GiB in this type, such as a 131072 x 5120 embedding in f32, fits no single array);
   * concatenated they are {@link #encode}'s bytes.
   */
  public byte[][] encodeParts(float[] x) {
    return encodeParts(x, PART_BYTES);
  }

  /** {@link #encodeParts(float[])} with parts of at most partBytes (at least one block). */
  byte[][] encodeParts(float[] x, long partBytes) {
    long per = Math.max(1, partBytes / typeSize) * blockSize; // values a part, whole blocks
    int parts = (int) Math.max(1, (x.length + per - 1) / per);
    byte[][] out = new byte[parts][];
    for (int p = 0; p < parts; p++) {
      out[p] = encode(x, (int) (p * per), (int) Math.min(x.length, (p + 1) * per));
    }
    return out;
  }

  /**
   * Decodes values of this type (the inverse of {@link #encode}; for Q8_0 the dequantized values
   * {@code d * q} as ggml computes them).
   *
   * @param data little-endian bytes, a whole number of blocks
   * @return the values
   */
  public float[] decode(ByteBuffer data) {
    ByteBuffer in = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int blocks = in.remaining() / typeSize;
    if (in.remaining() % typeSize != 0) {
      throw new IllegalArgumentException(
          in.remaining() + " bytes is not a whole number of " + this + " blocks");
    }
    float[] x = new float[blocks * blockSize];
    switch (this) {
      case F32 -> in.asFloatBuffer().get(x);
      case F16 -> {
        for (int i = 0; i < x.length; i++) x[i] = DType.f16ToFloat(in.getShort());
      }
      case BF16 -> {
        for (int i = 0; i < x.length; i++) x[i] = DType.bf16ToFloat(in.getShort());
      }
      case Q8_0 -> {
        for (int b = 0; b < blocks; b++) {
          float d = DType.f16ToFloat(in.getShort());
          for (int j = 0; j < QK8_0; j++) x[b * QK8_0 + j] = d * in.get();
        }
      }
    }
    return x;
  }

  /** One Q8_0 block of x[from, from + 32) as ggml's reference quantizer writes it. */
  static void quantizeBlockQ8_0(float[] x, int from, ByteBuffer out) {
    float amax = 0;
    for (int j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(x[from + j]));
    float d = amax / 127f;
    float id = d != 0 ? 1f / d : 0f;
    out.putShort(DType.floatToF16(d));
    for (int j = 0; j < QK8_0; j++) {
      float v = x[from + j] * id;
      out.put((byte) roundHalfAwayFromZero(v));
    }
  }

  /** C's {@code roundf}: to nearest, halfway cases away from zero. */
  static int roundHalfAwayFromZero(float v) {
    double r = Math.floor(Math.abs((double) v) + 0.5);
    return (int) (v < 0 ? -r : r);
  }
}
