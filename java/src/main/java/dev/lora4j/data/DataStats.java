package dev.lora4j.data;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * What reading a dataset found: examples produced, lines skipped and why, examples truncated,
 * tokens. Counts add up over every pass that shares this object (a {@link BatchIterator} counts
 * every epoch it reads). Thread-safe: the background batch thread updates it while the caller
 * reads it.
 */
public final class DataStats {
  /** Why a line produced no example. */
  public enum SkipReason {
    /** Malformed JSON, a missing field, a wrong type, an unknown role, a bad token id. */
    INVALID,
    /** Longer than maxSeqLength and the configuration drops such examples. */
    TOO_LONG,
    /** Every label is -100 (after truncation): nothing to learn from. */
    NO_LABELS
  }

  /** How many invalid lines are remembered for the report. */
  public static final int MAX_REPORTED_INVALID = 10;

  private long lines;
  private long examples;
  private long truncated;
  private long tokens;
  private long labelTokens;
  private final EnumMap<SkipReason, Long> skipped = new EnumMap<>(SkipReason.class);
  private final List<String> invalidLines = new ArrayList<>();

  /** Creates empty counts. */
  public DataStats() {
    for (SkipReason r : SkipReason.values()) skipped.put(r, 0L);
  }

  /** Non-blank lines read (of this split). */
  public synchronized long lines() {
    return lines;
  }

  /** Examples produced. */
  public synchronized long examples() {
    return examples;
  }

  /** Lines skipped for a reason. */
  public synchronized long skipped(SkipReason reason) {
    return skipped.get(reason);
  }

  /** Lines skipped for any reason. */
  public synchronized long skippedTotal() {
    long n = 0;
    for (long v : skipped.values()) n += v;
    return n;
  }

  /** Examples cut to maxSeqLength. */
  public synchronized long truncated() {
    return truncated;
  }

  /** Tokens of the examples produced (after truncation). */
  public synchronized long tokens() {
    return tokens;
  }

  /** Label tokens that count in the loss (after the shift) of the examples produced. */
  public synchronized long labelTokens() {
    return labelTokens;
  }

  /**
   * "file:line: why" for the first {@link #MAX_REPORTED_INVALID} invalid lines skipped (with
   * skipInvalid).
   */
  public synchronized List<String> invalidLines() {
    return List.copyOf(invalidLines);
  }

  /** The skip counts by reason. */
  public synchronized Map<SkipReason, Long> skippedByReason() {
    return Map.copyOf(skipped);
  }

  synchronized void line() {
    lines++;
  }

  synchronized void example(TokenizedExample e) {
    examples++;
    tokens += e.length();
    labelTokens += e.countedTokens();
  }

  synchronized void truncatedOne() {
    truncated++;
  }

  synchronized void skip(SkipReason reason) {
    skipped.merge(reason, 1L, Long::sum);
  }

  synchronized void invalid(String where) {
    skip(SkipReason.INVALID);
    if (invalidLines.size() < MAX_REPORTED_INVALID) invalidLines.add(where);
  }

  @Override
  public synchronized String toString() {
    StringBuilder sb =
        new StringBuilder()
            .append(examples)
            .append(" examples from ")
            .append(lines)
            .append(" lines, ")
            .append(tokens)
            .append(" tokens (")
            .append(labelTokens)
            .append(" counted), ")
            .append(truncated)
            .append(" truncated; skipped: ")
            .append(skipped.get(SkipReason.INVALID))
            .append(" invalid, ")
            .append(skipped.get(SkipReason.TOO_LONG))
            .append(" too long, ")
            .append(skipped.get(SkipReason.NO_LABELS))
            .append(" without labels");
    if (!invalidLines.isEmpty()) sb.append("; first invalid: ").append(invalidLines);
    return sb.toString();
  }
}
