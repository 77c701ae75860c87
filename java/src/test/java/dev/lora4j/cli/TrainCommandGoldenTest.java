package dev.lora4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.safetensors.SafetensorsFile;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The command line's train on the reference batch reproduces Hugging Face + PEFT's three AdamW
 * steps (losses, gradient norms, final weights).
 */
class TrainCommandGoldenTest {
  static final Path ROOT = Path.of("src/test/resources/hf-reference");
  static final ObjectMapper JSON = new ObjectMapper();

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void threeStepsThroughTheCommandLine(String c, @TempDir Path tmp) throws Exception {
    Path dir = ROOT.resolve(c);
    try (SafetensorsFile ref = SafetensorsFile.open(dir.resolve("reference.safetensors"))) {
      long[] ids = ref.readLong("input_ids"),
          mask = ref.readLong("attention_mask"),
          labels = ref.readLong("labels");
      long[] shape = ref.tensor("input_ids").shape();
      int rows = (int) shape[0], seq = (int) shape[1];
      StringBuilder jsonl = new StringBuilder();
      for (int r = 0; r < rows; r++) {
        ObjectNode o = JSON.createObjectNode();
        ArrayNode i = o.putArray("input_ids"), l = o.putArray("labels");
        for (int t = 0; t < seq; t++) {
          if (mask[r * seq + t] == 0) continue;
          i.add(ids[r * seq + t]);
          l.add(labels[r * seq + t]);
        }
        jsonl.append(JSON.writeValueAsString(o)).append('\n');
      }
      Path data = tmp.resolve("batch.jsonl");
      Files.writeString(data, jsonl);
      Path out = tmp.resolve("out");
      JsonNode cfg = JSON.readTree(dir.resolve("reference.json").toFile()).get("adamw");
      StringWriter err = new StringWriter();
      int code =
          Main.run(
              new String[] {
                "train",
                "--model",
                dir.resolve("model").toString(),
                "--data",
                data.toString(),
                "--output",
                out.toString(),
                "--adapter",
                dir.resolve("adapter_init").toString(),
                "--lr",
                cfg.get("lr").asText(),
                "--weight-decay",
                cfg.get("weight_decay").asText(),
                "--max-grad-norm",
                cfg.get("clip_norm").asText(),
                "--batch-size",
                Integer.toString(rows),
                "--steps",
                "3",
                "--schedule",
                "constant",
                "--shuffle-buffer",
                "0",
                "--device",
                "cpu",
                "--format",
                "pretokenized",
                "--no-guard"
              },
              new PrintWriter(new StringWriter()),
              new PrintWriter(err));
      assertEquals(0, code, err.toString());

      double[] losses = ref.readDouble("adamw.losses"), norms = ref.readDouble("adamw.grad_norms");
      List<JsonNode> steps = new ArrayList<>();
      for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
        JsonNode n = JSON.readTree(line);
        if (n.get("type").asText().equals("step")) steps.add(n);
      }
      assertEquals(3, steps.size());
      for (int s = 0; s < 3; s++) {
        assertEquals(s + 1, steps.get(s).get("step").asInt());
        double le = Math.abs(steps.get(s).get("loss").asDouble() - losses[s]) / losses[s];
        double ge = Math.abs(steps.get(s).get("grad_norm").asDouble() - norms[s]) / norms[s];
        System.out.printf("cli %s step %d: loss err %.2e grad_norm err %.2e%n", c, s, le, ge);
        assertTrue(le <= 1e-5, "loss " + s + " " + le);
        assertTrue(ge <= 1e-4, "grad norm " + s + " " + ge);
      }
      LoraAdapter init = LoraAdapter.read(dir.resolve("adapter_init"));
      LoraAdapter fin = LoraAdapter.read(out.resolve("adapter"));
      double num = 0, den = 0;
      for (String k : fin.keys()) {
        float[] got = fin.weight(k).values(), start = init.weight(k).values();
        double[] want = ref.readDouble("adamw.final." + k.replace(".weight", ".default.weight"));
        for (int i = 0; i < got.length; i++) {
          num += (got[i] - want[i]) * (got[i] - want[i]);
          den += (want[i] - start[i]) * (want[i] - start[i]);
        }
      }
      double err2 = Math.sqrt(num / den);
      System.out.printf("cli %s final weights err %.2e%n", c, err2);
      assertTrue(err2 <= 1e-3, "final weights " + err2);
      assertTrue(Files.isRegularFile(out.resolve("loss.png")));
    }
  }
}
