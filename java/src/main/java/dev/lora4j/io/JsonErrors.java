package dev.lora4j.io;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import java.util.regex.Pattern;

/**
 * A JSON parse error in words for a message that already names the file: the parser's reason with
 * its line and column, without the parser's own source placeholders ("[Source: REDACTED ...]").
 */
public final class JsonErrors {
  private JsonErrors() {}

  /** "[Source: ...; line: 1, column: 2]" as the parser embeds it (a start marker's location). */
  private static final Pattern SOURCE =
      Pattern.compile("\\[Source: [^\\]]*?; line: (\\d+), column: (\\d+)\\]");

  /**
   * The reason of a parse error, one line: "Unexpected end-of-input: expected close marker for
   * Array (start marker at line 2, column 8) at line 3, column 4"; other exceptions' messages as
   * they are.
   */
  public static String describe(Exception e) {
    return describe(e, true);
  }

  /**
   * {@link #describe(Exception)} for a text of one line (a JSONL line, whose message names the
   * file's line already): "... (start marker at column 1) at column 10".
   */
  public static String describeInLine(Exception e) {
    return describe(e, false);
  }

  private static String describe(Exception e, boolean lines) {
    if (!(e instanceof JsonProcessingException j)) return String.valueOf(e.getMessage());
    String why = String.valueOf(j.getOriginalMessage());
    why = SOURCE.matcher(why).replaceAll(lines ? "line $1, column $2" : "column $2");
    why = why.replaceAll("\\s*\\R\\s*", " ").trim();
    JsonLocation at = j.getLocation();
    if (at != null && at.getLineNr() > 0) {
      why +=
          lines
              ? " at line " + at.getLineNr() + ", column " + at.getColumnNr()
              : " at column " + at.getColumnNr();
    }
    return why;
  }
}
