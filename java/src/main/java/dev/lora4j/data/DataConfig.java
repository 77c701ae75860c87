package dev.lora4j.data;

/**
 * How a JSONL dataset is read, shuffled, split and batched. Build with {@link #builder()}; every
 * setting has a default.
 *
 * @param format the line format, or null to detect it from the first valid line (default null)
 * @param completionsOnly mask prompts (prompt/completion, Alpaca) and everything but assistant
 *     turns (chat) with -100, as TRL's completion-only and assistant-only loss do (default true)
 * @param maxSeqLength the longest example, in tokens; the row length when packing (default 1024)
 * @param dropOverlong drop examples longer than maxSeqLength instead of truncating them (keeping
 *     their first maxSeqLength tokens) (default false)
 * @param skipInvalid skip and count invalid lines instead of failing on the first one (default
 *     false)
 * @param batchSize rows per batch (default 1)
 * @param packing pack several examples into each row of exactly maxSeqLength tokens instead of one
 *     right-padded example per row (default false)
 * @param groupByLength without packing, batch examples of similar length, so that less of each
 *     batch is padding, as Hugging Face's {@code group_by_length} does: the (shuffled) stream is
 *     read in groups of {@link #GROUP_BATCHES} batches, each group sorted by length, longest first,
 *     and cut into batches in that order (default false)
 * @param shuffleBuffer examples held by the shuffle buffer; 0 or 1 keeps the file order (default
 *     10000)
 * @param seed seed of the shuffle and of the validation split (default 42)
 * @param validationFraction fraction of lines {@link JsonlDataset#validation()} takes from the
 *     file, in [0, 1) (default 0: none)
 * @param prefetch prepare the next batch on a background thread (default true)
 */
public record DataConfig(
    DataFormat format,
    boolean completionsOnly,
    int maxSeqLength,
    boolean dropOverlong,
    boolean skipInvalid,
    int batchSize,
    boolean packing,
    boolean groupByLength,
    int shuffleBuffer,
    long seed,
    double validationFraction,
    boolean prefetch) {

  /** Batches per length group of {@link #groupByLength()} (Hugging Face's mega-batch: 50). */
  public static final int GROUP_BATCHES = 50;

  public DataConfig {
    if (maxSeqLength < 2)
      throw new IllegalArgumentException("maxSeqLength must be >= 2, got " + maxSeqLength);
    if (batchSize < 1)
      throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
    if (shuffleBuffer < 0)
      throw new IllegalArgumentException("shuffleBuffer must be >= 0, got " + shuffleBuffer);
    checkGrouping(packing, groupByLength);
    if (!(validationFraction >= 0 && validationFraction < 1)) {
      throw new IllegalArgumentException(
          "validationFraction must be in [0, 1), got " + validationFraction);
    }
  }

  /**
   * Refuses groupByLength with packing (packed rows have no padding to save); {@link
   * dev.lora4j.TrainingConfig} checks the same.
   */
  public static void checkGrouping(boolean packing, boolean groupByLength) {
    if (packing && groupByLength) {
      throw new IllegalArgumentException(
          "groupByLength(true) and packing(true) exclude each other: packed rows have no padding"
              + " to save");
    }
  }

  /** A builder with the defaults. */
  public static Builder builder() {
    return new Builder();
  }

  /** The defaults. */
  public static DataConfig defaults() {
    return builder().build();
  }

  /** A builder starting from this configuration. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.format = format;
    b.completionsOnly = completionsOnly;
    b.maxSeqLength = maxSeqLength;
    b.dropOverlong = dropOverlong;
    b.skipInvalid = skipInvalid;
    b.batchSize = batchSize;
    b.packing = packing;
    b.groupByLength = groupByLength;
    b.shuffleBuffer = shuffleBuffer;
    b.seed = seed;
    b.validationFraction = validationFraction;
    b.prefetch = prefetch;
    return b;
  }

  /** Builds a {@link DataConfig}; see the record components for meanings and defaults. */
  public static final class Builder {
    private DataFormat format;
    private boolean completionsOnly = true;
    private int maxSeqLength = 1024;
    private boolean dropOverlong;
    private boolean skipInvalid;
    private int batchSize = 1;
    private boolean packing;
    private boolean groupByLength;
    private int shuffleBuffer = 10_000;
    private long seed = 42;
    private double validationFraction;
    private boolean prefetch = true;

    private Builder() {}

    public Builder format(DataFormat v) {
      format = v;
      return this;
    }

    public Builder completionsOnly(boolean v) {
      completionsOnly = v;
      return this;
    }

    public Builder maxSeqLength(int v) {
      maxSeqLength = v;
      return this;
    }

    public Builder dropOverlong(boolean v) {
      dropOverlong = v;
      return this;
    }

    public Builder skipInvalid(boolean v) {
      skipInvalid = v;
      return this;
    }

    public Builder batchSize(int v) {
      batchSize = v;
      return this;
    }

    public Builder packing(boolean v) {
      packing = v;
      return this;
    }

    public Builder groupByLength(boolean v) {
      groupByLength = v;
      return this;
    }

    public Builder shuffleBuffer(int v) {
      shuffleBuffer = v;
      return this;
    }

    public Builder seed(long v) {
      seed = v;
      return this;
    }

    public Builder validationFraction(double v) {
      validationFraction = v;
      return this;
    }

    public Builder prefetch(boolean v) {
      prefetch = v;
      return this;
    }

    public DataConfig build() {
      return new DataConfig(
          format,
          completionsOnly,
          maxSeqLength,
          dropOverlong,
          skipInvalid,
          batchSize,
          packing,
          groupByLength,
          shuffleBuffer,
          seed,
          validationFraction,
          prefetch);
    }
  }
}
