package dev.lora4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The recompute modes are one function: on the CPU engine training steps with per-layer and
 * selective recompute give bitwise the losses of keeping every activation (the CUDA engine's
 * selective mode is checked against the float64 reference in test_engine_cuda and against the
 * no-recompute run in CudaEngineTest).
 */
class RecomputeModesTest {
  static final Path TINY = Path.of("src/test/resources/hf-reference/tiny");

  static double[] steps(Device d, MistralModel.Recompute r) {
    MistralModel.LoadOptions o = MistralModel.LoadOptions.defaults().withRecompute(r);
    try (MistralModel m = MistralModel.load(TINY.resolve("model"), d, o)) {
      m.attachAdapter(TINY.resolve("adapter_init"));
      Batch b = Batch.of(new int[] {1, 17, 243, 99, 5, 300, 7, 8}, new int[] {1, 400, 401, 402});
      double[] out = new double[4];
      for (int i = 0; i < out.length; i++) {
        out[i] = m.trainStep(b, AdamWConfig.defaults().withLr(1e-2)).loss();
      }
      return out;
    }
  }

  @Test
  void cpuModesAreBitwiseEqual() {
    double[] none = steps(Device.cpu(), MistralModel.Recompute.NONE);
    assertArrayEquals(none, steps(Device.cpu(), MistralModel.Recompute.LAYER));
    assertArrayEquals(none, steps(Device.cpu(), MistralModel.Recompute.SELECTIVE));
  }
}
