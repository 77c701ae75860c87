package dev.lora4j.safetensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;

/**
 * Element types of the safetensors format, with their sizes and exact conversions.
 *
 * <p>The constants are declared in the order of the Rust {@code safetensors} crate's {@code Dtype}
 * enum (increasing alignment). The Python library writes tensors sorted by this order, descending,
 * then by name; {@link SafetensorsWriter} does the same, so its files are laid out as the Python
 * library lays them out.
 *
 * <p>Conversions: bf16 and f16 to float are exact; float to bf16 and f16 round to nearest, ties to
 * even, as {@code torch.Tensor.to(torch.bfloat16)} does; f64 to float rounds to nearest.
 */
public enum DType {
  /** Boolean, one byte (0 or 1). */
  BOOL(1, false),
  /** Unsigned 8-bit integer. */
  U8(1, false),
  /** Signed 8-bit integer. */
  I8(1, false),
  /** Signed 16-bit integer. */
  I16(2, false),
  /** Unsigned 16-bit integer. */
  U16(2, false),
  /** IEEE 754 half precision. */
  F16(2, true),
  /** bfloat16: the upper half of an IEEE float. */
  BF16(2, true),
  /** Signed 32-bit integer. */
  I32(4, false),
  /** Unsigned 32-bit integer. */
  U32(4, false),
  /** IEEE 754 single precision. */
  F32(4, true),
  /** IEEE 754 double precision. */
  F64(8, true),
  /** Signed 64-bit integer. */
  I64(8, false),
  /** Unsigned 64-bit integer (read into a long as its two's complement bits). */
  U64(8, false);

  private final int byteSize;
  private final boolean floatingPoint;

  DType(int byteSize, boolean floatingPoint) {
    this.byteSize = byteSize;
    this.floatingPoint = floatingPoint;
  }

  /**
   * @return bytes per element
   */
  public int byteSize() {
    return byteSize;
  }

  /**
   * The smallest magnitude that rounds to infinity when a float is stored in this type (halfway
   * past the largest finite value rounds to even: infinity): 65520 for F16, 0x7F7F8000 (about
   * 3.3962e38) for BF16; positive infinity for F32 and F64, which hold every finite float.
   */
  public float overflowLimit() {
    return switch (this) {
      case F16 -> 65520f;
      case BF16 -> Float.intBitsToFloat(0x7F7F8000);
      default -> Float.POSITIVE_INFINITY;
    };
  }

  /**
   * The first of the values this type cannot hold (not finite, or at or past {@link
   * #overflowLimit}), or -1 when it holds them all.
   */
  public int firstUnheld(float[] v) {
    float limit = overflowLimit();
    for (int i = 0; i < v.length; i++) {
      if (!Float.isFinite(v[i]) || Math.abs(v[i]) >= limit) return i;
    }
    return -1;
  }

  /**
   * @return whether this is a floating-point type (F16, BF16, F32, F64)
   */
  public boolean isFloatingPoint() {
    return floatingPoint;
  }

  /**
   * The type named as in a safetensors header ({@code "BF16"}, {@code "F32"}, ...).
   *
   * @param name the header's dtype string
   * @return the type, or empty when lora4j does not know it (FP8 types, for instance)
   */
  public static Optional<DType> byName(String name) {
    for (DType t : values()) {
      if (t.name().equals(name)) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }

  /**
   * Converts every element of {@code src} (from its position to its limit, read little-endian) to
   * float. Integer types convert as {@code (float) value}.
   *
   * @param src the raw bytes; its position is not changed
   * @return one float per element
   * @throws IllegalArgumentException when the byte count is not a multiple of the element size
   */
  public float[] toFloats(ByteBuffer src) {
    ByteBuffer b = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int n = count(b);
    float[] out = new float[n];
    int p = b.position();
    switch (this) {
      case BF16:
        for (int i = 0; i < n; i++) out[i] = bf16ToFloat(b.getShort(p + 2 * i));
        break;
      case F16:
        for (int i = 0; i < n; i++) out[i] = f16ToFloat(b.getShort(p + 2 * i));
        break;
      case F32:
        b.asFloatBuffer().get(out);
        break;
      case F64:
        for (int i = 0; i < n; i++) out[i] = (float) b.getDouble(p + 8 * i);
        break;
      default:
        long[] l = toLongs(b);
        for (int i = 0; i < n; i++) out[i] = (float) l[i];
    }
    return out;
  }

  /**
   * Converts every element of {@code src} to double; exact for all float types.
   *
   * @param src the raw bytes; its position is not changed
   * @return one double per element
   */
  public double[] toDoubles(ByteBuffer src) {
    ByteBuffer b = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int n = count(b);
    double[] out = new double[n];
    if (this == F64) {
      b.asDoubleBuffer().get(out);
    } else if (floatingPoint) {
      float[] f = toFloats(b);
      for (int i = 0; i < n; i++) out[i] = f[i];
    } else {
      long[] l = toLongs(b);
      for (int i = 0; i < n; i++) out[i] = l[i];
    }
    return out;
  }

  /**
   * Reads every element of an integer or boolean type as a long.
   *
   * @param src the raw bytes; its position is not changed
   * @return one long per element
   * @throws IllegalArgumentException for a floating-point type
   */
  public long[] toLongs(ByteBuffer src) {
    if (floatingPoint) {
      throw new IllegalArgumentException(this + " is a floating-point type, not an integer type");
    }
    ByteBuffer b = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int n = count(b);
    long[] out = new long[n];
    int p = b.position();
    for (int i = 0; i < n; i++) {
      int o = p + i * byteSize;
      switch (this) {
        case BOOL:
        case U8:
          out[i] = b.get(o) & 0xFF;
          break;
        case I8:
          out[i] = b.get(o);
          break;
        case I16:
          out[i] = b.getShort(o);
          break;
        case U16:
          out[i] = b.getShort(o) & 0xFFFF;
          break;
        case I32:
          out[i] = b.getInt(o);
          break;
        case U32:
          out[i] = b.getInt(o) & 0xFFFFFFFFL;
          break;
        default: // I64, U64
          out[i] = b.getLong(o);
      }
    }
    return out;
  }

  /**
   * Reads every element of an integer or boolean type as an int.
   *
   * @param src the raw bytes; its position is not changed
   * @return one int per element
   * @throws IllegalArgumentException for a floating-point type
   * @throws ArithmeticException when a value does not fit in an int
   */
  public int[] toInts(ByteBuffer src) {
    long[] l = toLongs(src);
    int[] out = new int[l.length];
    for (int i = 0; i < l.length; i++) out[i] = Math.toIntExact(l[i]);
    return out;
  }

  /**
   * Encodes floats as this floating-point type, little-endian (bf16 and f16 round to nearest even).
   *
   * @param values the values
   * @return {@code values.length * byteSize()} bytes
   * @throws IllegalArgumentException for an integer type
   */
  public byte[] fromFloats(float[] values) {
    ByteBuffer b =
        ByteBuffer.allocate(Math.multiplyExact(values.length, byteSize))
            .order(ByteOrder.LITTLE_ENDIAN);
    switch (this) {
      case BF16:
        for (float v : values) b.putShort(floatToBf16(v));
        break;
      case F16:
        for (float v : values) b.putShort(floatToF16(v));
        break;
      case F32:
        b.asFloatBuffer().put(values);
        break;
      case F64:
        for (float v : values) b.putDouble(v);
        break;
      default:
        throw new IllegalArgumentException("cannot encode floats as " + this);
    }
    return b.array();
  }

  /**
   * Encodes longs as this integer type, little-endian.
   *
   * @param values the values
   * @return {@code values.length * byteSize()} bytes
   * @throws IllegalArgumentException for a floating-point type or a value out of range
   */
  public byte[] fromLongs(long[] values) {
    if (floatingPoint) {
      throw new IllegalArgumentException("cannot encode integers as " + this);
    }
    ByteBuffer b =
        ByteBuffer.allocate(Math.multiplyExact(values.length, byteSize))
            .order(ByteOrder.LITTLE_ENDIAN);
    for (long v : values) {
      switch (this) {
        case BOOL:
          check(v, 0, 1);
          b.put((byte) v);
          break;
        case U8:
          check(v, 0, 255);
          b.put((byte) v);
          break;
        case I8:
          check(v, Byte.MIN_VALUE, Byte.MAX_VALUE);
          b.put((byte) v);
          break;
        case I16:
          check(v, Short.MIN_VALUE, Short.MAX_VALUE);
          b.putShort((short) v);
          break;
        case U16:
          check(v, 0, 0xFFFF);
          b.putShort((short) v);
          break;
        case I32:
          check(v, Integer.MIN_VALUE, Integer.MAX_VALUE);
          b.putInt((int) v);
          break;
        case U32:
          check(v, 0, 0xFFFFFFFFL);
          b.putInt((int) v);
          break;
        default:
          b.putLong(v);
      }
    }
    return b.array();
  }

  private void check(long v, long lo, long hi) {
    if (v < lo || v > hi) {
      throw new IllegalArgumentException("value " + v + " does not fit in " + this);
    }
  }

  private int count(ByteBuffer b) {
    int bytes = b.remaining();
    if (bytes % byteSize != 0) {
      throw new IllegalArgumentException(
          bytes + " bytes is not a whole number of " + this + " elements");
    }
    return bytes / byteSize;
  }

  /**
   * Exact bf16 to float.
   *
   * @param bits the bf16 bit pattern
   * @return the same value as a float
   */
  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /**
   * Float to bf16, rounding to nearest with ties to even, as torch does; NaN becomes the quiet NaN
   * 0x7FC0 (keeping the sign), infinities stay infinite, overflow rounds to infinity.
   *
   * @param value the float
   * @return the bf16 bit pattern
   */
  public static short floatToBf16(float value) {
    int u = Float.floatToRawIntBits(value);
    if (Float.isNaN(value)) {
      return (short) (((u >>> 16) & 0x8000) | 0x7FC0);
    }
    int rounding = 0x7FFF + ((u >>> 16) & 1);
    return (short) ((u + rounding) >>> 16);
  }

  /**
   * Exact IEEE half to float.
   *
   * @param bits the f16 bit pattern
   * @return the same value as a float
   */
  public static float f16ToFloat(short bits) {
    int h = bits & 0xFFFF;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1F;
    int mant = h & 0x3FF;
    if (exp == 0) {
      float v = Math.scalb((float) mant, -24);
      return sign != 0 ? -v : v;
    }
    if (exp == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  /**
   * Float to IEEE half, rounding to nearest with ties to even; overflow gives infinity, NaN stays a
   * (quiet) NaN.
   *
   * @param value the float
   * @return the f16 bit pattern
   */
  public static short floatToF16(float value) {
    int bits = Float.floatToRawIntBits(value);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xFF;
    int mant = bits & 0x7FFFFF;
    if (exp == 0xFF) {
      return (short) (sign | 0x7C00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
    }
    int e = exp - 112; // rebias 127 -> 15
    if (e >= 0x1F) {
      return (short) (sign | 0x7C00);
    }
    if (e <= 0) {
      // subnormal half (or zero): value / 2^-24 = mant24 * 2^(exp - 126)
      int shift = 126 - exp;
      if (exp == 0 || shift > 24) {
        return (short) sign; // float subnormals and anything below 2^-25 round to zero
      }
      int m = mant | 0x800000;
      int q = m >>> shift;
      int rem = m & ((1 << shift) - 1);
      int half = 1 << (shift - 1);
      if (rem > half || (rem == half && (q & 1) == 1)) q++;
      return (short) (sign | q);
    }
    int q = (e << 10) | (mant >>> 13);
    int rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1) == 1)) q++;
    return (short) (sign | q);
  }
}
