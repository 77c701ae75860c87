package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.AdamWConfig;
import dev.lora4j.Batch;
import dev.lora4j.Device;
import dev.lora4j.MistralModel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** Threads sharing one engine get correct results (calls are serialized), or a clear exception. */
class ConcurrencyTest {
  static final Path TINY = Path.of("src/test/resources/hf-reference/tiny");

  @Test
  void concurrentCallsGiveTheSequentialResults() throws Exception {
    Batch a = Batch.of(new int[] {1, 17, 243, 99, 5, 300, 7}),
        b = Batch.of(new int[] {1, 400, 3, 9});
    try (MistralModel m = MistralModel.load(TINY.resolve("model"), Device.cpu())) {
      m.attachAdapter(TINY.resolve("adapter_init"));
      double la = m.evalLoss(a), lb = m.evalLoss(b);
      ExecutorService ex = Executors.newFixedThreadPool(4);
      try {
        List<Future<double[]>> fs = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
          fs.add(
              ex.submit(
                  () -> {
                    double[] r = new double[40];
                    for (int i = 0; i < r.length; i++) r[i] = m.evalLoss(i % 2 == 0 ? a : b);
                    return r;
                  }));
        }
        for (Future<double[]> f : fs) {
          double[] r = f.get();
          for (int i = 0; i < r.length; i++) assertEquals(i % 2 == 0 ? la : lb, r[i], 0.0);
        }
      } finally {
        ex.shutdownNow();
      }
    }
  }

  @Test
  void closingWhileOthersUseTheEngineIsAnIllegalStateNotACrash() throws Exception {
    MistralModel m = MistralModel.load(TINY.resolve("model"), Device.cpu());
    m.attachAdapter(TINY.resolve("adapter_init"));
    Batch a = Batch.of(new int[] {1, 17, 243, 99, 5, 300, 7});
    ExecutorService ex = Executors.newFixedThreadPool(2);
    try {
      Future<Integer> user =
          ex.submit(
              () -> {
                int done = 0;
                try {
                  for (int i = 0; i < 10_000; i++) {
                    m.trainStep(a, AdamWConfig.defaults());
                    done++;
                  }
                } catch (IllegalStateException closed) {
                  assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
                }
                return done;
              });
      Thread.sleep(200);
      m.close();
      int steps = user.get();
      assertTrue(steps > 0 && steps < 10_000, "steps before close: " + steps);
    } finally {
      ex.shutdownNow();
    }
  }
}
