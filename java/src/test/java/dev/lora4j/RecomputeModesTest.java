package dev.lora4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.nativ.Lora4jLibrary;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The recompute modes are one function: on the CPU engine training steps with per-layer, selective
 * and attention recompute, with and without offloaded checkpoints (which the CPU engine ignores),
 * give bitwise the losses of keeping every activation (the CUDA engine's modes are checked against
 * the float64 reference in test_engine_cuda, offloading in test_offload_cuda, and both against the
 * no-recompute run in CudaEngineTest). The CPU engine runs every mode but NONE as per-layer
 * recompute, so on the CPU the selective and attention lines hold only that the modes are taken;
 * which native mode each option names is held by {@link #eachModeNamesItsNativeMode()}.
 */
class RecomputeModesTest {
  static final Path TINY = Path.of("src/test/resources/hf-reference/tiny");

  static double[] steps(Device d, MistralModel.Recompute r) {
    return steps(d, r, false);
  }

  static double[] steps(Device d, MistralModel.Recompute r, boolean offload) {
    MistralModel.LoadOptions o =
        MistralModel.LoadOptions.defaults().withRecompute(r).withOffloadCheckpoints(offload);
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
    assertArrayEquals(none, steps(Device.cpu(), MistralModel.Recompute.ATTENTION));
    // the CPU engine ignores offloading: these hold that the option is taken with a recompute
    // mode and changes nothing there (CudaEngineTest and test_offload_cuda hold what it does)
    assertArrayEquals(none, steps(Device.cpu(), MistralModel.Recompute.ATTENTION, true));
    assertArrayEquals(none, steps(Device.cpu(), MistralModel.Recompute.LAYER, true));
  }

  @Test
  void eachModeNamesItsNativeMode() {
    Map<MistralModel.Recompute, Integer> expected =
        Map.of(
            MistralModel.Recompute.NONE, Lora4jLibrary.LORA4J_RECOMPUTE_NONE,
            MistralModel.Recompute.LAYER, Lora4jLibrary.LORA4J_RECOMPUTE_LAYER,
            MistralModel.Recompute.SELECTIVE, Lora4jLibrary.LORA4J_RECOMPUTE_SELECTIVE,
            MistralModel.Recompute.ATTENTION, Lora4jLibrary.LORA4J_RECOMPUTE_ATTENTION);
    for (MistralModel.Recompute r : MistralModel.Recompute.values()) {
      assertEquals(expected.get(r), MistralModel.nativeRecompute(r), r.name());
    }
    // four distinct modes in the native API
    assertEquals(
        4,
        java.util.Arrays.stream(MistralModel.Recompute.values())
            .map(MistralModel::nativeRecompute)
            .distinct()
            .count());
  }

  @Test
  void offloadWithoutRecomputeIsRefused() {
    MistralModel.LoadOptions o = MistralModel.LoadOptions.defaults().withOffloadCheckpoints(true);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> MistralModel.load(TINY.resolve("model"), Device.cpu(), o));
    assertTrue(
        e.getMessage().contains("offloadCheckpoints needs a recompute mode"), e.getMessage());
  }
}
