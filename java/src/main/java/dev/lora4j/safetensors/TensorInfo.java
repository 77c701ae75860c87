package dev.lora4j.safetensors;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's entry in a safetensors header.
 *
 * @param name the tensor's name
 * @param dtype its element type
 * @param shape its dimensions, outermost first (row-major); a copy is kept and returned
 * @param begin first byte, relative to the start of the data section (after the header)
 * @param end one past the last byte, relative to the start of the data section
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

  /** Copies {@code shape} and checks the byte range; no cross-checks with dtype and shape here. */
  public TensorInfo {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    shape = shape.clone();
    if (begin < 0 || end < begin) {
      throw new IllegalArgumentException("bad byte range [" + begin + ", " + end + ") for " + name);
    }
  }

  /**
   * @return a copy of the dimensions
   */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  /**
   * @return the number of dimensions
   */
  public int rank() {
    return shape.length;
  }

  /**
   * @param i dimension index
   * @return the size of dimension {@code i}
   */
  public long dim(int i) {
    return shape[i];
  }

  /**
   * @return the product of the dimensions (1 for a scalar)
   */
  public long numElements() {
    long n = 1;
    for (long d : shape) n = Math.multiplyExact(n, d);
    return n;
  }

  /**
   * @return {@code end - begin}
   */
  public long byteLength() {
    return end - begin;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t
        && name.equals(t.name)
        && dtype == t.dtype
        && Arrays.equals(shape, t.shape)
        && begin == t.begin
        && end == t.end;
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape) + " bytes [" + begin + ", " + end + ")";
  }
}
