package dev.lora4j.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.io.JsonErrors;
import dev.lora4j.io.Uninterruptibly;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongPredicate;

/**
 * One streamed pass over a JSONL file in file order: one line at a time is read, parsed with {@link
 * ObjectMapper#readTree(String)}, encoded, truncated or dropped, and handed out. Nothing else of
 * the file is held but a window of lines read ahead.
 *
 * <p>With the built-in encoders (a tokenizer and its chat template, which keep no state between
 * lines) and the format known, the lines ahead are parsed and encoded on a pool of threads ({@code
 * lora4j.dataThreads}, default the machine's processors; 1 encodes on the reading thread) while the
 * reader takes their results in file order: what is counted, dropped, cut or reported, and at which
 * line, is what the one-line-at-a-time pass gives (a line's failure, or a read error, is raised
 * when the reader reaches it).
 */
final class JsonlReader implements ExampleStream {
  /**
   * A line's parser: a key given twice is an error (the earlier value would be lost without a
   * word), and a string may be as long as a Java string can be (Jackson's default limit, 20 M
   * characters, refused a long text as malformed; its tokens are cut to the sequence length).
   */
  static final ObjectMapper JSON =
      new ObjectMapper(
              com.fasterxml.jackson.core.JsonFactory.builder()
                  .streamReadConstraints(
                      com.fasterxml.jackson.core.StreamReadConstraints.builder()
                          .maxStringLength(Integer.MAX_VALUE)
                          .build())
                  .enable(com.fasterxml.jackson.core.StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                  .build())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private final Path file;
  private final String name;
  private final String splitName;
  private final DataFormat fixedFormat;
  private final LineEncoder encoder;
  private final DataConfig config;
  private final LongPredicate inSplit;
  private final DataStats stats;

  private Utf8Lines in;
  private long lineNo; // of the line the reader took last
  private long readNo; // of the line read last (ahead of lineNo)
  private final ArrayDeque<Ahead> ahead = new ArrayDeque<>();
  private long aheadChars;
  private boolean ended; // the file's last line (or a read error) is in the window

  /** Why a split can hold none of a file's lines, said when it does (null: no split). */
  private final String noLineHint;

  /** Non-blank lines of the file outside this split. */
  private long otherLines;

  private final ExecutorService pool; // null: every line encoded on the reading thread
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
      DataStats stats,
      String noLineHint) {
    this.file = file;
    this.noLineHint = noLineHint;
    this.name = file.toString();
    this.splitName = splitName;
    this.fixedFormat = fixedFormat;
    this.format = fixedFormat;
    this.encoder = encoder;
    this.config = config;
    this.inSplit = inSplit;
    this.stats = stats;
    this.pool = encoder.threadSafe() ? EncodePool.get() : null;
    try {
      this.in = new Utf8Lines(file);
    } catch (IOException e) {
      throw new DataException(name + ": cannot open the dataset: " + e, e);
    }
  }

  /**
   * A line read ahead: its number and text (null when not UTF-8: problem says why), whether this
   * split takes it, and its encoding when it was handed to the pool; or the read error met there.
   */
  private record Ahead(
      long number,
      String text,
      String problem,
      boolean ours,
      Future<LineEncoder.Encoded> encoded,
      DataException readError) {}

  /** Lines encoded on the pool since the class loaded (tests check the pool ran). */
  static final AtomicLong POOLED = new AtomicLong();

  /** The window: lines in flight and their characters, at most. */
  private static final int AHEAD_LINES_PER_THREAD = 32;

  private static final long AHEAD_CHARS = 8L << 20;

  /**
   * The threads that encode lines ahead, shared by every reader: daemon threads, gone when idle.
   */
  private static final class EncodePool {
    private static volatile ExecutorService pool;

    static ExecutorService get() {
      int n = threads();
      if (n <= 1) return null;
      ExecutorService p = pool;
      if (p == null) {
        synchronized (EncodePool.class) {
          p = pool;
          if (p == null) {
            AtomicInteger count = new AtomicInteger();
            // idle threads end after 30 s: a library caller keeps no threads once its data is read
            ThreadPoolExecutor e =
                new ThreadPoolExecutor(
                    n,
                    n,
                    30,
                    TimeUnit.SECONDS,
                    new LinkedBlockingQueue<>(),
                    r -> {
                      Thread t = new Thread(r, "lora4j-encode-" + count.incrementAndGet());
                      t.setDaemon(true);
                      return t;
                    });
            e.allowCoreThreadTimeOut(true);
            p = e;
            pool = p;
          }
        }
      }
      return p;
    }

    static int threads() {
      return Math.max(
          1, Integer.getInteger("lora4j.dataThreads", Runtime.getRuntime().availableProcessors()));
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
            name
                + ": no valid example in "
                + splitName
                + " ("
                + lineNo
                + " lines; "
                + stats
                + ")"
                + (stats.lines() == 0 && otherLines > 0 && noLineHint != null
                    ? ": " + noLineHint
                    : ""));
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
    for (Ahead a : ahead) {
      if (a.encoded() != null) a.encoded().cancel(false);
    }
    ahead.clear();
    aheadChars = 0;
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
      Ahead a = take();
      if (a == null) return null;
      lineNo = a.number();
      String line = a.text();
      boolean ours = a.ours();
      String where = name + ":" + lineNo;
      if (line == null) {
        // Not UTF-8: a bad line like any other (of the split that reads it).
        if (!ours) {
          otherLines++;
          continue;
        }
        stats.line();
        if (!config.skipInvalid()) {
          throw new DataException(where + ": " + a.problem() + skipHint());
        }
        stats.invalid(where, a.problem(), true);
        continue;
      }
      if (line.isBlank()) continue;
      if (!ours) {
        otherLines++;
        if (format == null) detectQuietly(line);
        continue;
      }
      stats.line();
      TokenizedExample e;
      String note;
      try {
        LineEncoder.Encoded en =
            a.encoded() != null ? encoded(a.encoded()) : encodeLine(line, where);
        e = en.example();
        note = en.note();
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
      if (note != null) stats.boundary(where, note);
      stats.example(e);
      produced++;
      return e;
    }
  }

  private LineEncoder.Encoded encodeLine(String line, String where) throws LineEncoder.BadLine {
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
    String k = format.missingKey(node);
    if (k != null) {
      throw new LineEncoder.BadLine(
          "missing field '"
              + k
              + "' (format "
              + format
              + (fixedFormat == null
                  ? ", detected from the first line whose keys match a format"
                  : "")
              + ")");
    }
    try {
      return encoder.encode(node, format, where);
    } catch (DataException ex) {
      // e.g. TokenizedExample's own checks, already named with the source
      throw new LineEncoder.BadLine(stripWhere(ex.getMessage(), where));
    }
  }

  /** The next line in file order, reading ahead (and handing lines to the pool) as it goes. */
  private Ahead take() {
    if (ahead.isEmpty()) fill();
    Ahead a = ahead.poll();
    if (a == null) return null;
    aheadChars -= a.text() == null ? 0 : a.text().length();
    if (a.readError() != null) {
      close();
      throw a.readError();
    }
    return a;
  }

  /**
   * Reads lines into the window until it is full or the file ends. A line goes to the pool when
   * there is one and the format is known (the first line that sets it is encoded here, in order).
   */
  private void fill() {
    int most = pool == null ? 1 : AHEAD_LINES_PER_THREAD * EncodePool.threads();
    while (in != null && !ended && ahead.size() < most && aheadChars < AHEAD_CHARS) {
      long number;
      String line;
      try {
        if (!in.next()) {
          ended = true;
          break;
        }
        number = in.number();
        line = in.text();
      } catch (IOException e) {
        ahead.add(
            new Ahead(
                readNo + 1,
                null,
                null,
                false,
                null,
                new DataException(name + ":" + (readNo + 1) + ": cannot read the line: " + e, e)));
        ended = true;
        break;
      }
      readNo = number;
      if (number == 1 && line != null && !line.isEmpty() && line.charAt(0) == '\uFEFF')
        line = line.substring(1);
      boolean ours = inSplit.test(number);
      Future<LineEncoder.Encoded> encoded = null;
      if (pool != null && format != null && ours && line != null && !line.isBlank()) {
        String text = line;
        String where = name + ":" + number;
        encoded =
            pool.submit(
                () -> {
                  POOLED.incrementAndGet();
                  return encodeLine(text, where);
                });
      }
      ahead.add(new Ahead(number, line, line == null ? in.problem() : null, ours, encoded, null));
      aheadChars += line == null ? 0 : line.length();
    }
  }

  /** The result of a line encoded on the pool: its example, or what encodeLine threw there. */
  private static LineEncoder.Encoded encoded(Future<LineEncoder.Encoded> f)
      throws LineEncoder.BadLine {
    try {
      return Uninterruptibly.get(f::get);
    } catch (ExecutionException ee) {
      Throwable c = ee.getCause();
      if (c instanceof LineEncoder.BadLine b) throw b;
      if (c instanceof RuntimeException r) throw r;
      if (c instanceof Error err) throw err;
      throw new DataException("encoding a line failed: " + c, c);
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

  private static List<String> keys(JsonNode node) {
    List<String> k = new ArrayList<>();
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) k.add(it.next());
    return k;
  }
}
