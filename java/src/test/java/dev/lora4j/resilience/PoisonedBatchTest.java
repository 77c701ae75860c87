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
import dev.lora4j.data.DataFormat;
import dev.lora4j.data.TokenizedExample;
import dev.lora4j.tokenizer.ChatMessage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On the shipped sample, one garbage batch among the clean ones: eight rows that are one token
 * repeated ({@code ▁batteries}, id 25267, a word absent from the sample, 120 times, every label
 * counted), as a stuck or zero-filled chunk of a tokenized file would look. All runs share one
 * recipe: constant learning rate 3e-3 after 5 warmup steps, AdamW, and no gradient clipping (the
 * default of torchtune's LoRA recipes); the garbage comes 3 batches before the end.
 *
 * <p>What it shows: the guard rejects exactly that step (its loss is 3.1x and its gradient norm
 * about 45x the running medians), rejects nothing in the clean run, and the guarded run ends where
 * the clean run ends: with a constant schedule a rejected step leaves no trace, so the adapters are
 * bitwise equal. Without the guard the step is applied and the final validation loss is worse:
 * clean 3.8074, guard on 3.8074, guard off 4.0249 (+5.7%). The damage is the garbage's, not the
 * extra step's: eight ordinary training rows inserted at the same place move the loss by +0.12%.
 * Measured with other LoRA seeds (not run here): garbage +49.0% and +9.4%, ordinary rows +0.06% and
 * -1.10%.
 *
 * <p>With clipping at 1.0 (the trainer's default) no single garbage batch did measurable damage:
 * clipping brings its gradient to the norm of any other step and AdamW's per-coordinate scaling
 * makes it worth about one ordinary step in a wrong direction, which the next clean steps repair.
 * Final validation loss against clean, guard off, clipped, 3e-3 constant, several positions 2 to 7
 * batches before the end: this batch -0.29% to +1.41%; uniformly random tokens -1.13% to +0.81%;
 * other tokens repeated, 4-token patterns, real inputs with every label one token: -2.18% to
 * +1.14%; one seed and position +6.20%. One extra batch of clean rows there moves it by -1.7% to
 * -4.1%. There the guard is insurance against what clipping does not bound (non-finite values, a
 * run of bad batches); without clipping it is what stands between one bad batch and the model.
 */
class PoisonedBatchTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");
  static final Path SAMPLE = Path.of("../examples/data/sample-chat.jsonl");

  /** "▁batteries": absent from the sample; the trained adapter rates it among its least likely. */
  static final int GARBAGE_TOKEN = 25267;

  record Run(
      double evalLoss,
      long steps,
      long skipped,
      List<String> skippedAt,
      byte[] adapter,
      long rejected,
      List<String> rejectedLines) {}

  /** The runs' settings: one epoch of pre-tokenized rows in file order, validated on val. */
  static TrainingConfig.Builder settings(Path out, Path val) {
    return TrainingConfig.builder()
        .outputDir(out)
        .lora(LoraConfig.builder().rank(16).alpha(32).allLinear().build())
        .learningRate(3e-3)
        .schedule(Schedule.constant().warmupSteps(5))
        .maxGradNorm(0)
        .batchSize(8)
        .epochs(1)
        .shuffleBuffer(0)
        .seed(1)
        .dataFormat(DataFormat.PRETOKENIZED)
        .validationFile(val)
        .loggingSteps(1000);
  }

  static Run train(MistralModel m, Path data, Path val, Path out, GuardConfig guard)
      throws Exception {
    TrainingConfig cfg = settings(out, val).guard(guard).build();
    List<String> at = new ArrayList<>();
    TrainingListener l =
        new TrainingListener() {
          @Override
          public void onSkippedStep(SkippedStep s) {
            at.add(s.dataPosition() + ": " + s.reason());
          }
        };
    TrainingResult r = LoraTrainer.fit(m, Dataset.jsonl(data), cfg, List.of(l));
    Path rej = out.resolve("rejected.jsonl");
    return new Run(
        r.finalEvaluation().loss(),
        r.steps(),
        r.skippedSteps(),
        at,
        Files.readAllBytes(r.adapterDir().resolve("adapter_model.safetensors")),
        r.rejectedBatches(),
        Files.exists(rej) ? Files.readAllLines(rej) : List.of());
  }

  /** The shipped chat sample as pre-tokenized rows (input_ids, labels on assistant turns). */
  static List<String> sampleRows(MistralModel m) throws Exception {
    ObjectMapper om = new ObjectMapper();
    ChatEncoder chat = m.chatEncoder();
    List<String> rows = new ArrayList<>();
    int line = 0;
    for (String s : Files.readAllLines(SAMPLE)) {
      List<ChatMessage> msgs = new ArrayList<>();
      om.readTree(s)
          .get("messages")
          .forEach(
              n -> msgs.add(new ChatMessage(n.get("role").asText(), n.get("content").asText())));
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
    return rows;
  }

  /** n rows of 120 copies of the garbage token. */
  static List<String> garbageRows(int n) throws Exception {
    ObjectMapper om = new ObjectMapper();
    List<String> garbage = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      ObjectNode o = om.createObjectNode();
      var ids = o.putArray("input_ids");
      for (int t = 0; t < 120; t++) ids.add(GARBAGE_TOKEN);
      garbage.add(om.writeValueAsString(o));
    }
    return garbage;
  }

  @Test
  void guardKeepsOneGarbageBatchFromTheModel(@TempDir Path tmp) throws Exception {
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      List<String> rows = sampleRows(m);
      List<String> val = rows.subList(0, 32),
          train = new ArrayList<>(rows.subList(32, rows.size()));
      train.addAll(new ArrayList<>(train)); // two passes in one file: the garbage comes once
      int at = train.size() / 8 * 8 - 2 * 8; // 3 batches follow the garbage (the last of 2 rows)
      List<String> garbage = garbageRows(8);
      List<String> poisoned = new ArrayList<>(train), benign = new ArrayList<>(train);
      poisoned.addAll(at, garbage);
      benign.addAll(at, train.subList(100, 108)); // eight ordinary rows: the cost of one more step
      Path valF = tmp.resolve("val.jsonl"),
          clean = tmp.resolve("clean.jsonl"),
          bad = tmp.resolve("poisoned.jsonl"),
          extra = tmp.resolve("benign.jsonl");
      Files.write(valF, val);
      Files.write(clean, train);
      Files.write(bad, poisoned);
      Files.write(extra, benign);

      Run c = train(m, clean, valF, tmp.resolve("c"), GuardConfig.defaults());
      Run on = train(m, bad, valF, tmp.resolve("on"), GuardConfig.defaults());
      Run off = train(m, bad, valF, tmp.resolve("off"), GuardConfig.off());
      Run plus = train(m, extra, valF, tmp.resolve("plus"), GuardConfig.off());
      double dOn = (on.evalLoss() - c.evalLoss()) / c.evalLoss();
      double dOff = (off.evalLoss() - c.evalLoss()) / c.evalLoss();
      double dPlus = (plus.evalLoss() - c.evalLoss()) / c.evalLoss();
      System.out.printf(
          "poisoned batch: clean eval loss %.4f (%d skipped); guard on %.4f (%+.2f%%, %d skipped:"
              + " %s); guard off %.4f (%+.2f%%, %d skipped); ordinary rows instead %.4f"
              + " (%+.2f%%)%n",
          c.evalLoss(),
          c.skipped(),
          on.evalLoss(),
          100 * dOn,
          on.skipped(),
          on.skippedAt(),
          off.evalLoss(),
          100 * dOff,
          off.skipped(),
          plus.evalLoss(),
          100 * dPlus);
      assertEquals(0, c.skipped(), "the guard rejects nothing in the clean run");
      // The garbage step is rejected, retried once at the end of the epoch, rejected again, and
      // written with its data position to rejected.jsonl.
      assertEquals(
          2,
          on.skipped(),
          "the guard rejects exactly the garbage step and its retry: " + on.skippedAt());
      assertEquals(1, on.rejected(), "one batch rejected twice");
      // both refusals reported to the listeners, the retry's marked as such (the retry's was
      // counted in skippedSteps without an event, so metrics.jsonl had fewer skipped lines)
      assertEquals(2, on.skippedAt().size(), on.skippedAt().toString());
      assertTrue(on.skippedAt().get(1).contains("(its retry)"), on.skippedAt().toString());
      assertEquals(0, c.rejected());
      assertEquals(1, on.rejectedLines().size(), on.rejectedLines().toString());
      var rl = new ObjectMapper().readTree(on.rejectedLines().get(0));
      assertEquals(at, rl.get("from").get("examples").asLong(), rl.toString());
      assertEquals(at + 8, rl.get("to").get("examples").asLong(), rl.toString());
      assertTrue(rl.get("reason").asText().contains("rejected again on its retry"), rl.toString());
      assertTrue(
          on.skippedAt()
              .get(0)
              .startsWith(
                  "epoch 1, after "
                      + at
                      + " examples .. epoch 1, after "
                      + (at + 8)
                      + " examples: "),
          on.skippedAt().toString());
      assertTrue(Math.abs(dOn) <= 0.02, "guarded run within 2% of clean: " + dOn);
      assertArrayEquals(
          c.adapter(),
          on.adapter(),
          "a rejected step leaves no trace: the guarded adapter is the clean one");
      assertEquals(0, off.skipped());
      assertEquals(on.steps() + 1, off.steps(), "without the guard the garbage step is applied");
      assertFalse(
          java.util.Arrays.equals(c.adapter(), off.adapter()),
          "the applied garbage step changes the adapter");
      assertTrue(
          dOff >= 0.03, "without the guard the garbage step shows in the validation loss: " + dOff);
      assertTrue(Math.abs(dPlus) <= 0.02, "one more ordinary step alone does not: " + dPlus);
    }
  }
}
