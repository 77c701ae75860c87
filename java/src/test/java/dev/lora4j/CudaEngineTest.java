package dev.lora4j;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.lora4j.nativ.Lora4jLibrary;
import dev.lora4j.nativ.NativeEngine;
import dev.lora4j.nativ.NativeException;
import dev.lora4j.nativ.NativeLibrary;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The CUDA engine from Java: failures come back as exceptions and the JVM goes on; training on
 * the GPU follows the CPU engine. Skipped, with the reason, where no CUDA device can be used.
 */
class CudaEngineTest {
  static final Path TINY = Path.of("src/test/resources/hf-reference/tiny");

  @BeforeAll
  static void needCuda() {
    String why = NativeLibrary.cudaUnavailableReason();
    if (why != null) System.out.println("CudaEngineTest skipped: " + why);
    assumeTrue(why == null, "no CUDA device: " + why);
  }

  @Test
  void badDeviceIndexIsAnException() {
    NativeEngine.Shape s = new NativeEngine.Shape(512, 64, 176, 2, 4, 2, 16, 0, 64, 1e-5f, 1e4);
    NativeException e = assertThrows(NativeException.class,
        () -> NativeEngine.create(s, Lora4jLibrary.DEVICE_CUDA, 97, 0, 0));
    assertTrue(e.getMessage().contains("97"), e.getMessage());
  }

  @Test
  void outOfMemoryIsAnExceptionAndTheJvmGoesOn() {
    // About 1.5 TB of bf16 weights: more than any GPU holds.
    NativeEngine.Shape huge = new NativeEngine.Shape(32000, 16384, 65536, 200, 128, 8, 128, 0, 4096, 1e-5f, 1e4);
    NativeException e = assertThrows(NativeException.class, () -> {
      try (NativeEngine eng = NativeEngine.create(huge, Lora4jLibrary.DEVICE_CUDA, 0, 0, 0)) {
        java.nio.ByteBuffer one = java.nio.ByteBuffer.allocateDirect(2 * 16384);
        eng.setWeight("model.norm.weight", Lora4jLibrary.DTYPE_BF16, one, 16384);
      }
    });
    assertTrue(e.isOutOfMemory(), e.status() + ": " + e.getMessage());
    try (MistralModel m = MistralModel.load(TINY.resolve("model"), Device.cuda(0))) {
      assertTrue(Double.isFinite(m.evalLoss(Batch.of(new int[] {1, 5, 9, 33, 2}))));
    }
  }

  @Test
  void trainingStepsFollowTheCpuEngine() {
    double[] cpu = steps(Device.cpu()), gpu = steps(Device.cuda(0));
    for (int i = 0; i < cpu.length; i++) {
      double rel = Math.abs(cpu[i] - gpu[i]) / cpu[i];
      System.out.printf("cuda vs cpu loss step %d: %.4f vs %.4f (rel %.2e)%n", i, gpu[i], cpu[i], rel);
      assertTrue(rel < 2e-2, "step " + i + " " + rel);
    }
  }

  static double[] steps(Device d) {
    try (MistralModel m = MistralModel.load(TINY.resolve("model"), d)) {
      m.attachAdapter(TINY.resolve("adapter_init"));
      Batch b = Batch.of(new int[] {1, 17, 243, 99, 5, 300, 7, 8}, new int[] {1, 400, 401, 402});
      double[] out = new double[4];
      for (int i = 0; i < out.length; i++) {
        out[i] = m.trainStep(b, AdamWConfig.defaults().withLr(1e-2)).loss();
      }
      return out;
    }
  }
}
