package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.GuardConfig;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.Schedule;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingListener;
import dev.lora4j.TrainingResult;
import dev.lora4j.data.ChatEncoder;
import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.data.DataFormat;
import dev.lora4j.data.TokenizedExample;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On the shipped sample, one batch replaced by garbage (random tokens, every label counted):
 * with the guard on, the step is rejected and the run ends within 2% of the clean run's
 * validation loss; with it off the garbage step is applied. Both figures are printed.
 */
class PoisonedBatchTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");
  static final Path SAMPLE = Path.of("../examples/data/sample-chat.jsonl");

  record Run(double evalLoss, long steps, long skipped, List<String> skippedAt) {}

  static Run train(MistralModel m, Path data, Path val, Path out, GuardConfig guard) {
    TrainingConfig cfg = TrainingConfig.builder().outputDir(out)
        .lora(LoraConfig.builder().rank(16).alpha(32).allLinear().build())
        .learningRate(5e-3).schedule(Schedule.cosine().warmupSteps(5)).batchSize(8).epochs(1)
        .shuffleBuffer(0).seed(1).dataFormat(DataFormat.PRETOKENIZED).validationFile(val)
        .loggingSteps(1000).guard(guard).build();
    List<String> at = new ArrayList<>();
    TrainingListener l = new TrainingListener() {
      @Override
      public void onSkippedStep(SkippedStep s) {
        at.add(s.dataPosition() + ": " + s.reason());
      }
    };
    TrainingResult r = LoraTrainer.fit(m, Dataset.jsonl(data), cfg, List.of(l));
    return new Run(r.finalEvaluation().loss(), r.steps(), r.skippedSteps(), at);
  }

  @Test
  void guardKeepsOneGarbageBatchFromTheModel(@TempDir Path tmp) throws Exception {
    ObjectMapper om = new ObjectMapper();
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      ChatEncoder chat = m.chatEncoder();
      List<String> rows = new ArrayList<>();
      int line = 0;
      for (String s : Files.readAllLines(SAMPLE)) {
        List<ChatMessage> msgs = new ArrayList<>();
        om.readTree(s).get("messages").forEach(n -> msgs.add(new ChatMessage(n.get("role").asText(), n.get("content").asText())));
        TokenizedExample e = chat.encode(msgs, true, "sample:" + (++line));
        ObjectNode o = om.createObjectNode();
        var ids = o.putArray("input_ids");
        var labels = o.putArray("labels");
        for (int i = 0; i < e.length(); i++) {
          ids.add(e.inputIds()[i]);
          labels.add(e.labels()[i]);
        }
        rows.add(om.writeValueAsString(o));
      }
      List<String> val = rows.subList(0, 32), train = new ArrayList<>(rows.subList(32, rows.size()));
      train.addAll(new ArrayList<>(train)); // two passes in one file: the garbage comes once
      int at = (int) (train.size() * 0.85) / 8 * 8;
      SplittableRandom r = new SplittableRandom(3);
      List<String> garbage = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        ObjectNode o = om.createObjectNode();
        var ids = o.putArray("input_ids");
        for (int t = 0; t < 120; t++) ids.add(3 + r.nextInt(31_997));
        garbage.add(om.writeValueAsString(o));
      }
      List<String> poisoned = new ArrayList<>(train);
      poisoned.addAll(at, garbage);
      Path valF = tmp.resolve("val.jsonl"), clean = tmp.resolve("clean.jsonl"), bad = tmp.resolve("poisoned.jsonl");
      Files.write(valF, val);
      Files.write(clean, train);
      Files.write(bad, poisoned);

      Run c = train(m, clean, valF, tmp.resolve("c"), GuardConfig.defaults());
      Run on = train(m, bad, valF, tmp.resolve("on"), GuardConfig.defaults());
      Run off = train(m, bad, valF, tmp.resolve("off"), GuardConfig.off());
      double dOn = (on.evalLoss() - c.evalLoss()) / c.evalLoss();
      double dOff = (off.evalLoss() - c.evalLoss()) / c.evalLoss();
      System.out.printf("poisoned batch: clean eval loss %.4f; guard on %.4f (%+.2f%%, %d skipped: %s); guard off %.4f (%+.2f%%, %d skipped)%n",
          c.evalLoss(), on.evalLoss(), 100 * dOn, on.skipped(), on.skippedAt(), off.evalLoss(), 100 * dOff, off.skipped());
      assertEquals(1, on.skipped(), "the guard rejects exactly the garbage step: " + on.skippedAt());
      assertTrue(on.skippedAt().get(0).contains("examples=" + (at + 8)), on.skippedAt().toString());
      assertTrue(Math.abs(dOn) <= 0.02, "guarded run within 2% of clean: " + dOn);
      assertEquals(0, off.skipped());
      assertEquals(on.steps() + 1, off.steps(), "without the guard the garbage step is applied");
    }
  }
}
