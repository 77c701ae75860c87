package dev.lora4j.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What one pass over a data file did to its lines: how many became examples, how many were dropped
 * and why, how many were cut, and the first few of each kind with file, line and reason (see {@link
 * DataStats}).
 *
 * @param lines non-blank lines read (of this split)
 * @param examples examples produced
 * @param tokens tokens of the examples produced
 * @param labelTokens tokens that count in the loss
 * @param truncated examples cut to the maximum length (kept, or dropped after the cut left nothing
 *     to learn)
 * @param skipped lines that produced no example, by reason
 * @param noted the first few dropped or altered examples of each kind
 */
public record DataReport(
    long lines,
    long examples,
    long tokens,
    long labelTokens,
    long truncated,
    Map<DataStats.SkipReason, Long> skipped,
    List<DataStats.Noted> noted) {

  public DataReport {
    skipped = Map.copyOf(skipped);
    noted = List.copyOf(noted);
  }

  /** Lines dropped for any reason. */
  public long dropped() {
    long n = 0;
    for (long v : skipped.values()) n += v;
    return n;
  }

  /** Lines dropped for one reason. */
  public long dropped(DataStats.SkipReason reason) {
    return skipped.getOrDefault(reason, 0L);
  }

  /** Whether every line became an example unchanged. */
  public boolean clean() {
    return dropped() == 0 && truncated == 0;
  }

  /**
   * One line: "61 lines: 60 examples; dropped 1 (1 with nothing to learn); truncated 1", and when
   * something was dropped or cut, the first few as "file:line: reason: detail" on the following
   * lines (each starting with two spaces).
   */
  public String describe() {
    StringBuilder sb =
        new StringBuilder(String.format(Locale.ROOT, "%d lines: %d examples", lines, examples));
    if (dropped() > 0) {
      List<String> why = new ArrayList<>();
      for (DataStats.SkipReason r : DataStats.SkipReason.values()) {
        long n = dropped(r);
        if (n > 0) why.add(n + " " + words(r));
      }
      sb.append("; dropped ")
          .append(dropped())
          .append(" (")
          .append(String.join(", ", why))
          .append(')');
    }
    if (truncated > 0) sb.append("; truncated ").append(truncated);
    for (DataStats.Noted n : noted) sb.append("\n  ").append(n);
    return sb.toString();
  }

  static String words(DataStats.SkipReason r) {
    return switch (r) {
      case INVALID -> "invalid";
      case ENCODING -> "not UTF-8";
      case TOO_LONG -> "too long";
      case NO_LABELS -> "with nothing to learn";
    };
  }

  @Override
  public String toString() {
    return describe();
  }
}
