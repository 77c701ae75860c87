package dev.lora4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Lora4jException;
import dev.lora4j.data.DataConfig;
import dev.lora4j.data.DataStats;
import dev.lora4j.data.ExampleStream;
import dev.lora4j.data.JsonlDataset;
import dev.lora4j.data.TemplateChatEncoder;
import dev.lora4j.data.TokenizedExample;
import dev.lora4j.data.TokenizerTextEncoder;
import dev.lora4j.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code tokenize}: shows a data file as the model sees it. */
@Command(
    name = "tokenize",
    mixinStandardHelpOptions = true,
    description = {
      "Show a JSONL data file as the model sees it, in file order: per example the tokens and"
          + " which of them count in the loss ([brackets]); with --json one object per example"
          + " with input_ids and labels (-100 where a position does not count).",
      ""
    })
final class TokenizeCommand implements Callable<Integer> {
  @Option(
      names = "--data",
      required = true,
      paramLabel = "FILE.jsonl",
      description = "data file, one JSON example per line (UTF-8)")
  Path data;

  @Option(
      names = "--format",
      paramLabel = "text|prompt_completion|alpaca|chat|pretokenized",
      description = "data format (default: detected from the first valid line)")
  String format;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Source source;

  static final class Source {
    @Option(
        names = "--tokenizer",
        paramLabel = "DIR",
        description = "folder with tokenizer.json (and tokenizer_config.json for chat data)")
    Path tokenizer;

    @Option(names = "--model", paramLabel = "DIR", description = "model folder with tokenizer.json")
    Path model;
  }

  @Option(names = "--json", description = "one JSON object per example (default: tokens as text)")
  boolean json;

  @Option(
      names = "--completions-only",
      negatable = true,
      description =
          "mask prompts as training with --completions-only would (default: as train's, on for"
              + " prompt / completion and Alpaca data, off for chat, text and input_ids)")
  Boolean completionsOnly;

  @Option(
      names = "--max-seq-length",
      defaultValue = "1000000",
      paramLabel = "N",
      description = "cut examples to N tokens as training would (default: ${DEFAULT-VALUE})")
  int maxSeqLength;

  @Option(
      names = "--skip-invalid",
      description = "skip bad lines (malformed, not UTF-8) and report them (default: off)")
  boolean skipInvalid;

  @Override
  public Integer call() throws Exception {
    Path dir = source.tokenizer != null ? source.tokenizer : source.model;
    Tokenizer tok = Tokenizer.fromModelDir(dir);
    DataConfig cfg =
        DataConfig.builder()
            .format(format == null ? null : TrainCommand.parseFormat(format))
            .completionsOnly(Boolean.TRUE.equals(completionsOnly))
            .maxSeqLength(maxSeqLength)
            .skipInvalid(skipInvalid)
            .shuffleBuffer(0)
            .build();
    JsonlDataset ds =
        JsonlDataset.open(
            data, new TokenizerTextEncoder(tok), TemplateChatEncoder.forFolder(dir, tok), cfg);
    if (completionsOnly == null) ds = ds.withCompletionsOnlyOfItsFormat();
    ObjectMapper om = new ObjectMapper();
    DataStats stats = new DataStats();
    try (ExampleStream s = ds.examplesInFileOrder(stats)) {
      while (s.hasNext()) {
        TokenizedExample e = s.next();
        if (json) {
          ObjectNode o = om.createObjectNode();
          ArrayNode ids = o.putArray("input_ids"), labels = o.putArray("labels");
          for (int i = 0; i < e.length(); i++) {
            ids.add(e.inputIds()[i]);
            labels.add(e.labels()[i]);
          }
          System.out.println(om.writeValueAsString(o));
        } else {
          StringBuilder sb = new StringBuilder(e.source()).append(": ");
          for (int i = 0; i < e.length(); i++) {
            String piece = tok.idToToken(e.inputIds()[i]);
            sb.append(e.labels()[i] == TokenizedExample.IGNORE ? piece : "[" + piece + "]")
                .append(' ');
          }
          System.out.println(sb.toString().trim());
        }
      }
    } catch (Lora4jException ex) {
      throw ex;
    }
    System.err.println("data: " + Flags.translate(stats.report().describe()));
    return 0;
  }
}
