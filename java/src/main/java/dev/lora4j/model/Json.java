package dev.lora4j.model;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * JSON output formatted as Python's {@code json.dumps(obj, indent=2)}: two-space indent, {@code
 * "key": value}, arrays one element a line, empty containers as {@code {}} and {@code []}.
 */
public final class Json {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private Json() {}

  /**
   * @param node a JSON tree
   * @return its text in Python's {@code indent=2} layout, without a trailing newline
   */
  public static String pretty(JsonNode node) {
    DefaultIndenter indenter = new DefaultIndenter("  ", "\n");
    Separators seps =
        Separators.createDefaultInstance()
            .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
            .withObjectEmptySeparator("")
            .withArrayEmptySeparator("");
    DefaultPrettyPrinter pp =
        new DefaultPrettyPrinter(seps).withObjectIndenter(indenter).withArrayIndenter(indenter);
    try {
      return MAPPER
          .writer(pp)
          .without(JsonGenerator.Feature.ESCAPE_NON_ASCII)
          .writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot format JSON", e);
    }
  }
}
