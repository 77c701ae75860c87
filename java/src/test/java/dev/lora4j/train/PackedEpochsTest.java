package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingListener;
import dev.lora4j.TrainingResult;
import dev.lora4j.data.DataConfig;
import dev.lora4j.data.JsonlDataset;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Packed rows depend on each epoch's shuffle, so epochs pack into different numbers of batches: the
 * run must train every batch of every epoch (it planned epochs x the first epoch's count, and
 * stopped before the last epoch's last batches without a word).
 */
class PackedEpochsTest {
  @Test
  void everyEpochIsTrainedWholeWhenPackingChangesItsBatchCount(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 60, 11);
    int epochs = 4, seq = 40, buffer = 64;
    long seed = 3;
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      DataConfig dc =
          DataConfig.builder()
              .completionsOnly(false)
              .maxSeqLength(seq)
              .batchSize(1)
              .packing(true)
              .shuffleBuffer(buffer)
              .seed(seed)
              .prefetch(false)
              .build();
      JsonlDataset ds = JsonlDataset.open(d, m.textEncoder(), m.chatEncoder(), dc);
      long first = ds.countBatches(0), all = 0;
      for (int e = 0; e < epochs; e++) all += ds.countBatches(e);
      assertNotEquals(first * epochs, all, "the data must pack differently in some epoch");
      AtomicLong planned = new AtomicLong(-1);
      TrainingListener plan =
          new TrainingListener() {
            @Override
            public void onTrainBegin(TrainingPlan p) {
              planned.set(p.totalSteps());
            }
          };
      TrainingResult r =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              TrainingConfig.builder()
                  .outputDir(tmp.resolve("out"))
                  .batchSize(1)
                  .packing(true)
                  .maxSeqLength(seq)
                  .shuffleBuffer(buffer)
                  .seed(seed)
                  .epochs(epochs)
                  .lora(LoraConfig.builder().rank(2).alpha(4).build())
                  .loggingSteps(1000)
                  .build(),
              List.of(plan));
      assertEquals(all, planned.get(), "the plan: one step per batch of every epoch");
      assertEquals(all, r.steps(), "one step per batch of every epoch");
    }
  }
}
