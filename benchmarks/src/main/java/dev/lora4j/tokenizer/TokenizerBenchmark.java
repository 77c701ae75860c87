package dev.lora4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One pass of the tokenizer over the shipped general-text sample (examples/data/general-text.jsonl,
 * 300 lines, 52,725 characters; run from the repository's root), with the Mistral vocabulary of the
 * shipped model: {@code impl} {@code words} (the piece cut into words, each kept once merged) or
 * {@code whole} (each normalized piece merged whole, the reference the words are tested against);
 * {@code cache} {@code warm} (the words of earlier passes kept, as in a run's later epochs) or
 * {@code cold} (emptied before each pass: a first pass over new text, where only the words repeated
 * within it are found). The tokens of a pass are printed at setup.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class TokenizerBenchmark {
  @Param({"words", "whole"})
  public String impl;

  @Param({"warm", "cold"})
  public String cache;

  Tokenizer tok;
  List<String> texts;

  @Setup(Level.Trial)
  public void setup() throws Exception {
    Path file = Path.of("examples/models/tiny-mistral/tokenizer.json");
    tok = impl.equals("words") ? Tokenizer.fromFile(file) : Tokenizer.withoutWordSplit(file);
    texts = new ArrayList<>();
    ObjectMapper om = new ObjectMapper();
    for (String l : Files.readAllLines(Path.of("examples/data/general-text.jsonl"))) {
      JsonNode n = om.readTree(l);
      texts.add(n.get("text").asText());
    }
    long tokens = 0;
    for (String t : texts) tokens += tok.encode(t, false).length;
    System.out.println("tokens a pass: " + tokens);
  }

  @Benchmark
  public long pass() {
    if (cache.equals("cold")) tok.forgetWords();
    long n = 0;
    for (String t : texts) n += tok.encode(t, false).length;
    return n;
  }
}
