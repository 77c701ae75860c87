package dev.lora4j.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class DTypeTest {

  @Test
  void sizesAndNames() {
    assertEquals(2, DType.BF16.byteSize());
    assertEquals(2, DType.F16.byteSize());
    assertEquals(4, DType.F32.byteSize());
    assertEquals(8, DType.F64.byteSize());
    assertEquals(8, DType.I64.byteSize());
    assertEquals(4, DType.I32.byteSize());
    assertEquals(1, DType.U8.byteSize());
    assertEquals(1, DType.BOOL.byteSize());
    assertEquals(DType.BF16, DType.byName("BF16").orElseThrow());
    assertTrue(DType.byName("F8_E4M3").isEmpty());
    assertTrue(DType.byName("bf16").isEmpty());
  }

  @Test
  void everyBf16PatternUpcastsExactlyAndRoundTrips() {
    int nan = 0;
    for (int b = 0; b < 0x10000; b++) {
      float f = DType.bf16ToFloat((short) b);
      assertEquals(b << 16, Float.floatToRawIntBits(f));
      if (Float.isNaN(f)) {
        nan++;
        continue;
      }
      assertEquals((short) b, DType.floatToBf16(f), "pattern " + Integer.toHexString(b));
    }
    assertEquals(2 * 127, nan);
  }

  @Test
  void bf16RoundsToNearestEvenLikeTorch() {
    // 1 + 2^-8 is halfway between bf16 1.0 (0x3F80) and 1.0078125 (0x3F81): ties to even -> 0x3F80
    assertEquals((short) 0x3F80, DType.floatToBf16(1.0f + 0x1p-8f));
    // 1 + 3 * 2^-8 is halfway between 0x3F81 and 0x3F82: ties to even -> 0x3F82
    assertEquals((short) 0x3F82, DType.floatToBf16(1.0f + 3 * 0x1p-8f));
    // just above the halfway point rounds up
    assertEquals((short) 0x3F81, DType.floatToBf16(Math.nextUp(1.0f + 0x1p-8f)));
    // just below rounds down
    assertEquals((short) 0x3F80, DType.floatToBf16(Math.nextDown(1.0f + 0x1p-8f)));
    // negative values mirror
    assertEquals((short) 0xBF82, DType.floatToBf16(-(1.0f + 3 * 0x1p-8f)));
    // float max rounds to infinity, infinity stays, NaN is quiet NaN
    assertEquals((short) 0x7F80, DType.floatToBf16(Float.MAX_VALUE));
    assertEquals((short) 0xFF80, DType.floatToBf16(Float.NEGATIVE_INFINITY));
    assertEquals((short) 0x7FC0, DType.floatToBf16(Float.NaN));
    // pi = 0x40490FDB -> 0x4049 (0x0FDB < 0x8000)
    assertEquals((short) 0x4049, DType.floatToBf16((float) Math.PI));
  }

  @Test
  void everyF16PatternUpcastsExactlyAndRoundTrips() {
    for (int h = 0; h < 0x10000; h++) {
      float f = DType.f16ToFloat((short) h);
      if (Float.isNaN(f)) {
        assertEquals(0x7C00, h & 0x7C00);
        continue;
      }
      assertEquals((short) h, DType.floatToF16(f), "pattern " + Integer.toHexString(h));
    }
    assertEquals(65504f, DType.f16ToFloat((short) 0x7BFF));
    assertEquals(0x1p-24f, DType.f16ToFloat((short) 0x0001));
    assertEquals(-2f, DType.f16ToFloat((short) 0xC000));
  }

  @Test
  void f16RoundsToNearestEven() {
    assertEquals((short) 0x7BFF, DType.floatToF16(65519f)); // below the halfway point to 65536
    assertEquals((short) 0x7C00, DType.floatToF16(65520f)); // tie -> even -> infinity
    assertEquals((short) 0x0000, DType.floatToF16(0x1p-25f)); // tie between 0 and 2^-24 -> 0
    assertEquals((short) 0x0001, DType.floatToF16(1.5f * 0x1p-25f));
    assertEquals((short) 0x0002, DType.floatToF16(3 * 0x1p-25f)); // tie between 1 and 2 -> 2
    assertEquals((short) 0x3C00, DType.floatToF16(1.0f + 0x1p-11f)); // tie -> even
    assertEquals((short) 0x3C02, DType.floatToF16(1.0f + 3 * 0x1p-11f)); // tie -> even
    assertEquals((short) 0x8000, DType.floatToF16(-0.0f));
  }

  @Test
  void arrayConversions() {
    float[] v = {1f, -2.5f, 3.1415927f, 1e-3f};
    assertArrayEquals(v, DType.F32.toFloats(ByteBuffer.wrap(DType.F32.fromFloats(v))));
    assertArrayEquals(v, DType.F64.toFloats(ByteBuffer.wrap(DType.F64.fromFloats(v))));
    float[] bf = DType.BF16.toFloats(ByteBuffer.wrap(DType.BF16.fromFloats(v)));
    // 1e-3f = 0x3A83126F: low half 0x126F < 0x8000, so bf16 0x3A83 = 9.994507e-4
    assertArrayEquals(new float[] {1f, -2.5f, 3.140625f, 9.994507E-4f}, bf);
    ByteBuffer le = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    le.putLong(-3).putLong(1L << 40).flip();
    assertArrayEquals(new long[] {-3, 1L << 40}, DType.I64.toLongs(le));
    assertEquals(0, le.position(), "source position unchanged");
    assertArrayEquals(new long[] {255, 1}, DType.U8.toLongs(ByteBuffer.wrap(new byte[] {-1, 1})));
    assertArrayEquals(
        new int[] {-1, 7},
        DType.I32.toInts(ByteBuffer.wrap(DType.I32.fromLongs(new long[] {-1, 7}))));
    assertThrows(ArithmeticException.class, () -> DType.I64.toInts(le));
    assertThrows(IllegalArgumentException.class, () -> DType.F32.toLongs(le));
    assertThrows(IllegalArgumentException.class, () -> DType.I32.fromLongs(new long[] {1L << 40}));
    assertThrows(IllegalArgumentException.class, () -> DType.F32.toFloats(ByteBuffer.allocate(6)));
  }
}
