package dev.lora4j.io;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import org.junit.jupiter.api.Test;

class JsonErrorsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static Exception parse(String text) {
    return assertThrows(IOException.class, () -> JSON.readTree(text));
  }

  @Test
  void theReasonWithItsPlaceOnOneLine() {
    Exception cut = parse("{\n  \"a\": [1,\n  2");
    String many = JsonErrors.describe(cut);
    assertFalse(many.contains("Source") || many.contains("REDACTED") || many.contains("\n"), many);
    assertTrue(many.startsWith("Unexpected end-of-input"), many);
    assertTrue(
        many.startsWith(
            "Unexpected end-of-input: expected close marker for Array (start marker at line 2,"
                + " column 8)"),
        many);
    assertTrue(many.endsWith(" at line 3, column 4"), many);
    String one = JsonErrors.describeInLine(parse("{\"text\": \"ab"));
    assertFalse(one.contains("line") || one.contains("Source"), one);
    assertTrue(one.contains(" at column "), one);
    IOException plain = new IOException("disk gone");
    assertEquals("disk gone", JsonErrors.describe(plain));
  }
}
