package dev.lora4j.nativ;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Device;
import org.junit.jupiter.api.Test;

class NativeBoundaryTest {
  static NativeEngine.Shape shape(int heads, int kvHeads) {
    return new NativeEngine.Shape(64, 32, 48, 2, heads, kvHeads, 8, 0, 16, 1e-5f, 10000.0);
  }

  @Test
  void loadsFromTheJarAndReportsItsVersion() {
    assertEquals("0.1.0", NativeLibrary.version());
  }

  @Test
  void badConfigIsAnExceptionNamingTheKey() {
    NativeException e =
        assertThrows(
            NativeException.class,
            () -> NativeEngine.create(shape(3, 2), Lora4jLibrary.LORA4J_DEVICE_CPU, 0, 1, 0));
    assertEquals(Lora4jLibrary.LORA4J_EINVAL, e.status());
    assertTrue(e.getMessage().contains("num_key_value_heads"), e.getMessage());
  }

  @Test
  void cudaWithoutBackendSaysWhy() {
    String why = NativeLibrary.cudaUnavailableReason();
    if (why != null) {
      NativeException e = assertThrows(NativeException.class, () -> Device.cuda(0));
      assertTrue(e.getMessage().contains("CUDA"), e.getMessage());
      assertFalse(Device.auto().isCuda());
    } else {
      assertTrue(Device.auto().isCuda());
    }
  }
}
