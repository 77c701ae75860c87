package dev.lora4j.data;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * What reading a dataset found: examples produced, lines skipped and why, examples truncated,
 * tokens. Counts add up over every pass that shares this object (a {@link BatchIterator} counts
 * every epoch it reads). Thread-safe: the background batch thread updates it while the caller reads
 * it.
 */
public final class DataStats {
  /** Why a line produced no example. */
  public enum SkipReason {
    /** Malformed JSON, a missing field, a wrong type, an unknown role, a bad token id. */
    INVALID,
    /** Not UTF-8 text: undecodable bytes, NUL bytes (binary data or UTF-16). */
    ENCODING,
    /** Longer than maxSeqLength and the configuration drops such examples. */
    TOO_LONG,
    /** Every label is -100 (after truncation): nothing to learn from. */
    NO_LABELS
  }

  /**
   * How many invalid lines are remembered for the report (toString's "first invalid" list): as many
   * as each kind of noted example, the first five the README promises.
   */
  public static final int MAX_REPORTED_INVALID = 5;

  /** How many examples of each kind of drop or alteration are remembered for the report. */
  public static final int MAX_NOTED = 5;

  /** What happened to an example that was dropped or altered. */
  public enum Issue {
    /** Skipped: an invalid line (with skipInvalid). */
    INVALID("invalid"),
    /** Skipped: a line that is not UTF-8 text (with skipInvalid). */
    ENCODING("not UTF-8"),
    /** Kept, cut to maxSeqLength. */
    TRUNCATED("truncated"),
    /** Dropped: longer than maxSeqLength (with dropOverlong). */
    TOO_LONG("too long"),
    /** Dropped: no token counts in the loss. */
    NO_LABELS("nothing to learn"),
    /**
     * Kept: the prompt alone tokenizes otherwise than the start of prompt + completion, so the
     * prompt's mask also covers the completion's first token(s) (TRL masks alike and warns).
     */
    PROMPT_BOUNDARY("prompt mask past the prompt");

    private final String words;

    Issue(String words) {
      this.words = words;
    }

    /** In words, for reports. */
    public String words() {
      return words;
    }
  }

  /**
   * One dropped or altered example.
   *
   * @param issue what happened
   * @param where "file:line"
   * @param detail why, in words
   */
  public record Noted(Issue issue, String where, String detail) {
    @Override
    public String toString() {
      return where + ": " + issue.words() + ": " + detail;
    }
  }

  private long lines;
  private long examples;
  private long truncated;
  private long tokens;
  private long labelTokens;
  private long boundaries;
  private final EnumMap<SkipReason, Long> skipped = new EnumMap<>(SkipReason.class);
  private final List<String> invalidLines = new ArrayList<>();
  private final EnumMap<Issue, List<Noted>> noted = new EnumMap<>(Issue.class);

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

  /**
   * Examples whose prompt, tokenized alone, is not a prefix of prompt + completion tokenized (the
   * mask of the prompt's length then covers the completion's first tokens).
   */
  public synchronized long promptBoundaries() {
    return boundaries;
  }

  synchronized void boundary(String where, String detail) {
    boundaries++;
    note(Issue.PROMPT_BOUNDARY, where, detail);
  }

  synchronized void truncatedOne(String where, String detail) {
    truncated++;
    note(Issue.TRUNCATED, where, detail);
  }

  synchronized void skip(SkipReason reason) {
    skipped.merge(reason, 1L, Long::sum);
  }

  synchronized void skip(SkipReason reason, String where, String detail) {
    skip(reason);
    note(Issue.valueOf(reason.name()), where, detail);
  }

  /** An invalid (or, with encoding, undecodable) line skipped: "file:line" and why. */
  synchronized void invalid(String where, String why, boolean encoding) {
    skip(encoding ? SkipReason.ENCODING : SkipReason.INVALID);
    if (invalidLines.size() < MAX_REPORTED_INVALID) invalidLines.add(where + ": " + why);
    note(encoding ? Issue.ENCODING : Issue.INVALID, where, why);
  }

  /** Adds another pass's counts and noted examples (up to the limits) to these. */
  public void add(DataStats other) {
    DataReport r = other.report();
    long otherBoundaries = other.promptBoundaries();
    synchronized (this) {
      boundaries += otherBoundaries;
      lines += r.lines();
      examples += r.examples();
      tokens += r.tokens();
      labelTokens += r.labelTokens();
      truncated += r.truncated();
      r.skipped().forEach((k, v) -> skipped.merge(k, v, Long::sum));
      for (Noted n : r.noted()) {
        note(n.issue(), n.where(), n.detail());
        if ((n.issue() == Issue.INVALID || n.issue() == Issue.ENCODING)
            && invalidLines.size() < MAX_REPORTED_INVALID) {
          invalidLines.add(n.where() + ": " + n.detail());
        }
      }
    }
  }

  private void note(Issue issue, String where, String detail) {
    List<Noted> l = noted.computeIfAbsent(issue, k -> new ArrayList<>());
    if (l.size() < MAX_NOTED) l.add(new Noted(issue, where, detail));
  }

  /** The first {@link #MAX_NOTED} examples of each kind of drop or alteration, by kind. */
  public synchronized List<Noted> noted() {
    List<Noted> out = new ArrayList<>();
    for (List<Noted> l : noted.values()) out.addAll(l);
    return out;
  }

  /** A snapshot of the counts and the noted examples. */
  public synchronized DataReport report() {
    return new DataReport(
        lines, examples, tokens, labelTokens, truncated, Map.copyOf(skipped), noted());
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
            .append(skipped.get(SkipReason.ENCODING))
            .append(" not UTF-8, ")
            .append(skipped.get(SkipReason.TOO_LONG))
            .append(" too long, ")
            .append(skipped.get(SkipReason.NO_LABELS))
            .append(" without labels");
    if (!invalidLines.isEmpty()) sb.append("; first invalid: ").append(invalidLines);
    return sb.toString();
  }
}
