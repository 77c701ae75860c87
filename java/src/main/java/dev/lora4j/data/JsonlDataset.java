package dev.lora4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.function.LongPredicate;

/**
 * A JSONL training file, read as a stream: every pass re-reads the file one line at a time, so a
 * file larger than memory trains in bounded memory (the shuffle buffer and two prepared batches are
 * what is held).
 *
 * <p>Each line becomes one {@link TokenizedExample} according to its {@link DataFormat}, detected
 * from the keys of the file's first valid line unless {@link DataConfig#format()} sets it. Text is
 * tokenized literally. Examples longer than {@link DataConfig#maxSeqLength()} are truncated (or
 * dropped), examples with no label left are skipped, and both are counted in {@link DataStats}. A
 * bad line is a {@link DataException} naming file and line, or skipped and counted with {@link
 * DataConfig#skipInvalid()}. A pass with no valid example is a {@link DataException} naming the
 * file. Blank lines are ignored.
 *
 * <p><b>Validation split.</b> With {@link DataConfig#validationFraction()} {@code f > 0}, {@link
 * #validation()} takes line {@code n} (1-based, counting every physical line) iff {@code
 * splitmix64(seed ^ splitmix64(n)) >>> 11} scaled to [0, 1) is below {@code f}, and {@link
 * #train()} takes every other line: a seeded, deterministic, scattered selection of about {@code f}
 * of the lines (not the first or last block of the file), the same on every pass and never in both.
 * A separate validation file is simply another {@code JsonlDataset}.
 *
 * <p><b>Epochs and shuffling.</b> Epoch {@code e} reads the file again and shuffles it through a
 * {@link ShuffleBuffer} of {@link DataConfig#shuffleBuffer()} examples seeded with {@code seed +
 * e}; the validation split is never shuffled. The same seed gives the same order, which is what
 * makes {@link DataPosition} resumption exact.
 */
public final class JsonlDataset {
  /** Which lines of the file a dataset view reads. */
  public enum Split {
    /** Every line. */
    ALL,
    /** The lines not selected for validation. */
    TRAIN,
    /** The lines selected for validation. */
    VALIDATION
  }

  private final Path file;
  private final TextEncoder text;
  private final ChatEncoder chat;
  private final DataConfig config;
  private final Split split;

  private JsonlDataset(
      Path file, TextEncoder text, ChatEncoder chat, DataConfig config, Split split) {
    this.file = file;
    this.text = text;
    this.chat = chat;
    this.config = config;
    this.split = split;
  }

  /**
   * A dataset over every line of a JSONL file. Nothing is read yet beyond checking that the file
   * exists.
   *
   * @param file the JSONL file
   * @param text the tokenizer, for literal text and the special ids
   * @param chat the chat template, or null when the file has no chat lines
   * @param config how to read and batch
   * @throws DataException when the file is missing or not a regular file
   */
  public static JsonlDataset open(
      Path file, TextEncoder text, ChatEncoder chat, DataConfig config) {
    Objects.requireNonNull(file, "file");
    Objects.requireNonNull(text, "text encoder");
    Objects.requireNonNull(config, "config");
    if (!Files.isRegularFile(file)) throw new DataException(file + ": no such dataset file");
    if (!Files.isReadable(file)) throw new DataException(file + ": dataset file is not readable");
    return new JsonlDataset(file, text, chat, config, Split.ALL);
  }

  /** The training lines: all lines not taken by {@link #validation()}. */
  public JsonlDataset train() {
    return new JsonlDataset(file, text, chat, config, Split.TRAIN);
  }

  /**
   * The validation lines (never shuffled).
   *
   * @throws IllegalStateException when the configuration has no validation fraction
   */
  public JsonlDataset validation() {
    if (config.validationFraction() <= 0) {
      throw new IllegalStateException("validationFraction is 0: no validation split");
    }
    return new JsonlDataset(file, text, chat, config, Split.VALIDATION);
  }

  /** The file. */
  public Path file() {
    return file;
  }

  /** The configuration. */
  public DataConfig config() {
    return config;
  }

  /** Which lines this view reads. */
  public Split split() {
    return split;
  }

  /** The tokenizer this dataset encodes with. */
  public TextEncoder textEncoder() {
    return text;
  }

  /**
   * Whether line {@code line} (1-based) of a file goes to the validation split for this seed and
   * fraction (see the class comment).
   */
  public static boolean isValidationLine(long line, long seed, double fraction) {
    if (fraction <= 0) return false;
    long h = ShuffleBuffer.mix(seed ^ ShuffleBuffer.mix(line));
    double u = (h >>> 11) * 0x1.0p-53;
    return u < fraction;
  }

  /**
   * This view with {@link DataConfig#completionsOnly()} as TRL's SFTTrainer decides it for the
   * file's format ({@link DataFormat#completionsOnlyByDefault()}); off when no line has a format
   * (the pass over the file then says why, line by line).
   */
  public JsonlDataset withCompletionsOnlyOfItsFormat() {
    DataFormat f = formatOrNull();
    return withCompletionsOnly(f != null && f.completionsOnlyByDefault());
  }

  /** {@link #format()}, or null where no line has a format (the pass over the file says why). */
  public DataFormat formatOrNull() {
    try {
      return format();
    } catch (DataException noFormat) {
      return null;
    }
  }

  /** How the split takes lines, for the messages of a split that holds none. */
  private static final String HELD_OUT =
      "(each line is held out with probability validationFraction, decided by a hash of its number"
          + " and the seed)";

  /** This view with {@link DataConfig#completionsOnly()} set to v. */
  public JsonlDataset withCompletionsOnly(boolean v) {
    return new JsonlDataset(file, text, chat, config.toBuilder().completionsOnly(v).build(), split);
  }

  /**
   * The format of the file: {@link DataConfig#format()} when set, else detected from the first line
   * that is a JSON object whose keys match a format.
   *
   * @throws DataException when no line matches any format
   */
  public DataFormat format() {
    if (config.format() != null) return config.format();
    try (Utf8Lines in = new Utf8Lines(file)) {
      while (in.next()) {
        String line = in.text();
        if (line == null || line.isBlank()) continue;
        try {
          JsonNode node = JsonlReader.JSON.readTree(line.replace("\uFEFF", ""));
          DataFormat f = DataFormat.detect(node);
          if (f != null) return f;
        } catch (IOException ignored) {
          // malformed line: keep looking
        }
      }
    } catch (IOException e) {
      throw new DataException(file + ": cannot read the dataset: " + e, e);
    }
    throw new DataException(
        file + ": no line matches a data format; expected one of " + DataFormat.describeAll());
  }

  /**
   * One pass over this view's examples in file order.
   *
   * @param stats where to count, or null for a fresh {@link DataStats}
   */
  public ExampleStream examplesInFileOrder(DataStats stats) {
    return new JsonlReader(
        file,
        switch (split) {
          case ALL -> "the file";
          case TRAIN ->
              "its training lines (those validationFraction "
                  + config.validationFraction()
                  + " leaves for training)";
          case VALIDATION ->
              "its validation lines (those validationFraction "
                  + config.validationFraction()
                  + " holds out)";
        },
        config.format(),
        new LineEncoder(text, chat, config.completionsOnly()),
        config,
        splitPredicate(),
        stats == null ? new DataStats() : stats,
        switch (split) {
          case ALL -> null;
          case TRAIN ->
              "every line of the file fell in the validation split "
                  + HELD_OUT
                  + ": give a"
                  + " smaller fraction or a validation file";
          case VALIDATION ->
              "none of the file's lines fell in this split "
                  + HELD_OUT
                  + ", so a small file may hold out none: give a larger fraction, another seed or"
                  + " a validation file";
        });
  }

  /**
   * One pass over this view's examples in the order of epoch {@code epoch}: shuffled with seed
   * {@code seed + epoch} (file order for the validation split or a buffer of 0 or 1).
   *
   * @param stats where to count, or null for a fresh {@link DataStats}
   */
  public ExampleStream examples(int epoch, DataStats stats) {
    ExampleStream base = examplesInFileOrder(stats);
    if (split == Split.VALIDATION || config.shuffleBuffer() <= 1) return base;
    ShuffleBuffer<TokenizedExample> shuffled =
        new ShuffleBuffer<>(
            base, config.shuffleBuffer(), ShuffleBuffer.epochSeed(config.seed(), epoch));
    return new ExampleStream() {
      @Override
      public boolean hasNext() {
        return shuffled.hasNext();
      }

      @Override
      public TokenizedExample next() {
        return shuffled.next();
      }

      @Override
      public DataStats stats() {
        return base.stats();
      }

      @Override
      public void close() {
        base.close();
      }
    };
  }

  /** Reads this view once, in file order, and returns its counts (tokens, skips, truncations). */
  public DataStats scan() {
    DataStats stats = new DataStats();
    try (ExampleStream s = examplesInFileOrder(stats)) {
      while (s.hasNext()) s.next();
    }
    return stats;
  }

  /**
   * Batches from a position to the end of epoch {@code epochs - 1}, prepared on a background thread
   * when {@link DataConfig#prefetch()} is set. Close the iterator when done.
   *
   * @param start where to start (for a resumed run, the position saved with the checkpoint)
   * @param epochs the number of epochs of the whole run
   */
  public BatchIterator batches(DataPosition start, int epochs) {
    return new BatchIterator(this, start, epochs);
  }

  /**
   * The number of batches of epoch {@code epoch}, by building them once on the calling thread (one
   * pass over the file). With packing the count depends on the epoch's shuffle; without it, it is
   * ceil(examples / batchSize) for every epoch. For learning-rate schedules.
   */
  public long countBatches(int epoch) {
    return countBatches(epoch, new DataStats());
  }

  /** Like {@link #countBatches(int)}, counting what it reads (examples, skips, truncations). */
  public long countBatches(int epoch, DataStats stats) {
    long n = 0;
    try (BatchProducer p = new BatchProducer(this, new DataPosition(epoch, 0), epoch + 1, stats)) {
      while (p.next() != null) n++;
    }
    return n;
  }

  /** All batches of one epoch (epoch 0) from the start. */
  public BatchIterator batches() {
    return batches(DataPosition.START, 1);
  }

  private LongPredicate splitPredicate() {
    double f = config.validationFraction();
    long seed = config.seed();
    return switch (split) {
      case ALL -> n -> true;
      case TRAIN -> n -> !isValidationLine(n, seed, f);
      case VALIDATION -> n -> isValidationLine(n, seed, f);
    };
  }

  @Override
  public String toString() {
    return "JsonlDataset[" + file + ", " + split + "]";
  }
}
