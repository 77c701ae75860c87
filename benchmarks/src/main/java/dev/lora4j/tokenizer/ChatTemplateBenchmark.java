package dev.lora4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One pass of {@link ChatTemplate#encode} (render with the owners of every char, tokenize, the
 * training mask) over 2,000 two-message conversations made from the shipped general-text sample
 * (run from the repository's root): a user turn of up to 400 characters and an assistant turn of up
 * to 1,500, drawn with a fixed seed, the shipped model's template and vocabulary. This is the work
 * of each chat line in the data pass before training and in each epoch. The tokens of a pass are
 * printed at setup.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class ChatTemplateBenchmark {
  Tokenizer tok;
  ChatTemplate template;
  List<List<ChatMessage>> conversations;

  @Setup(Level.Trial)
  public void setup() throws Exception {
    Path model = Path.of("examples/models/tiny-mistral");
    tok = Tokenizer.fromModelDir(model);
    template = ChatTemplate.fromModelDir(model);
    ObjectMapper om = new ObjectMapper();
    List<String> texts = new ArrayList<>();
    for (String l : Files.readAllLines(Path.of("examples/data/general-text.jsonl"))) {
      JsonNode n = om.readTree(l);
      texts.add(n.get("text").asText());
    }
    Random rnd = new Random(1);
    conversations = new ArrayList<>();
    for (int i = 0; i < 2000; i++) {
      String user = texts.get(rnd.nextInt(texts.size()));
      StringBuilder reply = new StringBuilder();
      for (int k = 0; k < 3; k++) {
        if (k > 0) reply.append(' ');
        reply.append(texts.get(rnd.nextInt(texts.size())));
      }
      conversations.add(
          List.of(
              new ChatMessage("user", user.substring(0, Math.min(400, user.length()))),
              new ChatMessage("assistant", reply.substring(0, Math.min(1500, reply.length())))));
    }
    System.out.println("tokens a pass: " + pass());
  }

  @Benchmark
  public long pass() {
    long n = 0;
    for (List<ChatMessage> c : conversations) n += template.encode(c, false, tok).ids().length;
    return n;
  }
}
