package dev.lora4j.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.io.JsonErrors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.LongPredicate;

/**
 * One streamed pass over a JSONL file in file order: one line at a time is read, parsed with {@link
 * ObjectMapper#readTree(String)}, encoded, truncated or dropped, and handed out. Nothing else of
 * the file is held.
 */
final class JsonlReader implements ExampleStream {
  static final ObjectMapper JSON =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private final Path file;
  private final String name;
  private final String splitName;
  private final DataFormat fixedFormat;
  private final LineEncoder encoder;
  private final DataConfig config;
  private final LongPredicate inSplit;
  private final DataStats stats;

  private Utf8Lines in;
  private long lineNo;
  private DataFormat format;
  private TokenizedExample next;
  private long produced;
  private boolean finished;

  JsonlReader(
      Path file,
      String splitName,
      DataFormat fixedFormat,
      LineEncoder encoder,
      DataConfig config,
      LongPredicate inSplit,
      DataStats stats) {
    this.file = file;
    this.name = file.toString();
    this.splitName = splitName;
    this.fixedFormat = fixedFormat;
    this.format = fixedFormat;
    this.encoder = encoder;
    this.config = config;
    this.inSplit = inSplit;
    this.stats = stats;
    try {
      this.in = new Utf8Lines(file);
    } catch (IOException e) {
      throw new DataException(name + ": cannot open the dataset: " + e, e);
    }
  }

  /** The format in use: the fixed one, or the one detected so far (null before the first line). */
  DataFormat format() {
    return format;
  }

  @Override
  public DataStats stats() {
    return stats;
  }

  @Override
  public boolean hasNext() {
    if (next != null) return true;
    if (finished) return false;
    next = advance();
    if (next == null) {
      finished = true;
      close();
      if (produced == 0) {
        throw new DataException(
            name + ": no valid example in " + splitName + " (" + lineNo + " lines; " + stats + ")");
      }
      return false;
    }
    return true;
  }

  @Override
  public TokenizedExample next() {
    if (!hasNext()) throw new NoSuchElementException();
    TokenizedExample e = next;
    next = null;
    return e;
  }

  @Override
  public void close() {
    if (in != null) {
      try {
        in.close();
      } catch (IOException ignored) {
        // nothing was written; a failed close of a reader loses nothing
      }
      in = null;
    }
  }

  private TokenizedExample advance() {
    while (true) {
      if (!readLine()) return null;
      String line = in.text();
      boolean ours = inSplit.test(lineNo);
      String where = name + ":" + lineNo;
      if (line == null) {
        // Not UTF-8: a bad line like any other (of the split that reads it).
        if (!ours) continue;
        stats.line();
        if (!config.skipInvalid()) {
          throw new DataException(where + ": " + in.problem() + skipHint());
        }
        stats.invalid(where, in.problem(), true);
        continue;
      }
      if (lineNo == 1 && !line.isEmpty() && line.charAt(0) == '\uFEFF') line = line.substring(1);
      if (line.isBlank()) continue;
      if (!ours) {
        if (format == null) detectQuietly(line);
        continue;
      }
      stats.line();
      TokenizedExample e;
      try {
        e = encodeLine(line, where);
      } catch (LineEncoder.BadLine bad) {
        if (!config.skipInvalid())
          throw new DataException(where + ": " + bad.getMessage() + skipHint());
        stats.invalid(where, bad.getMessage(), false);
        continue;
      }
      int fullLength = e.length();
      boolean cut = fullLength > config.maxSeqLength();
      if (cut) {
        if (config.dropOverlong()) {
          stats.skip(
              DataStats.SkipReason.TOO_LONG,
              where,
              fullLength + " tokens, longer than maxSeqLength " + config.maxSeqLength());
          continue;
        }
        e = e.truncate(config.maxSeqLength());
      }
      if (e.countedTokens() == 0) { // a line cut to nothing that counts is a drop, not a cut
        stats.skip(
            DataStats.SkipReason.NO_LABELS,
            where,
            cut
                ? "no token counts in the loss within its first "
                    + config.maxSeqLength()
                    + " tokens (of "
                    + fullLength
                    + "): the part that counts was cut"
                : "no token counts in the loss");
        continue;
      }
      if (cut) {
        stats.truncatedOne(
            where, fullLength + " tokens cut to maxSeqLength " + config.maxSeqLength());
      }
      stats.example(e);
      produced++;
      return e;
    }
  }

  private TokenizedExample encodeLine(String line, String where) throws LineEncoder.BadLine {
    JsonNode node;
    try {
      node = JSON.readTree(line);
    } catch (JsonProcessingException ex) {
      throw new LineEncoder.BadLine("malformed JSON: " + JsonErrors.describeInLine(ex));
    }
    if (node == null || !node.isObject()) {
      throw new LineEncoder.BadLine(
          "expected a JSON object, got " + (node == null ? "nothing" : LineEncoder.kind(node)));
    }
    if (format == null) {
      DataFormat f = DataFormat.detect(node);
      if (f == null) {
        throw new LineEncoder.BadLine(
            "cannot tell the data format from the keys "
                + keys(node)
                + "; expected one of "
                + DataFormat.describeAll()
                + " (or set dataFormat)");
      }
      format = f;
    }
    for (String k : format.requiredKeys()) {
      if (!node.has(k)) {
        throw new LineEncoder.BadLine(
            "missing field '"
                + k
                + "' (format "
                + format
                + (fixedFormat == null ? ", detected from the first valid line" : "")
                + ")");
      }
    }
    try {
      return encoder.encode(node, format, where);
    } catch (DataException ex) {
      // e.g. TokenizedExample's own checks, already named with the source
      throw new LineEncoder.BadLine(stripWhere(ex.getMessage(), where));
    }
  }

  private static String stripWhere(String msg, String where) {
    return msg != null && msg.startsWith(where + ": ") ? msg.substring(where.length() + 2) : msg;
  }

  private void detectQuietly(String line) {
    try {
      format = DataFormat.detect(JSON.readTree(line));
    } catch (JsonProcessingException ignored) {
      // a bad line of the other split: that split reports it
    }
  }

  /** The hint that ends the message of a bad line that stops the pass. */
  private static String skipHint() {
    return " (TrainingConfig's skipInvalidLines(true) skips and counts such lines)";
  }

  private boolean readLine() {
    if (in == null) return false;
    try {
      boolean more = in.next();
      if (more) lineNo = in.number();
      return more;
    } catch (IOException e) {
      throw new DataException(name + ":" + (lineNo + 1) + ": cannot read the line: " + e, e);
    }
  }

  private static List<String> keys(JsonNode node) {
    List<String> k = new ArrayList<>();
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) k.add(it.next());
    return k;
  }
}
