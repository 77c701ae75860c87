package dev.lora4j.nativ;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@link Lora4jLibrary} is written by hand from {@code native/include/lora4j.h}; this test ties the
 * two: every {@code #define LORA4J_*} constant of the header exists in Java with the same value,
 * Java has no {@code LORA4J_*} constant the header lacks, and every function the header declares
 * has its native method.
 */
class Lora4jHeaderTest {
  static final Path HEADER = Path.of("../native/include/lora4j.h");
  static final Pattern DEFINE =
      Pattern.compile(
          "^#define\\s+(LORA4J_\\w+)\\s+(-?(?:0[xX][0-9a-fA-F]+|\\d+))[uU]?\\b", Pattern.MULTILINE);
  static final Pattern FUNCTION = Pattern.compile("\\b(lora4j_\\w+)\\s*\\(");

  /** The header's integer constants, in order. */
  static Map<String, Long> headerConstants(String text) {
    Map<String, Long> m = new LinkedHashMap<>();
    Matcher d = DEFINE.matcher(text);
    while (d.find()) {
      String v = d.group(2);
      long value =
          v.startsWith("0x") || v.startsWith("0X")
              ? Long.parseLong(v.substring(2), 16)
              : Long.parseLong(v);
      assertNull(m.put(d.group(1), value), "defined twice: " + d.group(1));
    }
    return m;
  }

  static Map<String, Long> javaConstants() throws IllegalAccessException {
    Map<String, Long> m = new LinkedHashMap<>();
    for (Field f : Lora4jLibrary.class.getDeclaredFields()) {
      int mod = f.getModifiers();
      if (!f.getName().startsWith("LORA4J_")) continue;
      assertTrue(
          Modifier.isPublic(mod) && Modifier.isStatic(mod) && Modifier.isFinal(mod),
          f.getName() + " must be public static final");
      assertEquals(int.class, f.getType(), f.getName() + " must be an int");
      m.put(f.getName(), (long) f.getInt(null));
    }
    return m;
  }

  @Test
  void everyHeaderConstantHasItsValueInJavaAndNoOther() throws Exception {
    String text = Files.readString(HEADER);
    Map<String, Long> header = headerConstants(text);
    Map<String, Long> java = javaConstants();
    // the include guard has no value and is not a constant
    assertFalse(header.containsKey("LORA4J_H"));
    assertTrue(
        header.size() >= 30 && header.containsKey("LORA4J_STATE_EXP_AVG_SQ"),
        "constants parsed from the header: " + header.keySet());
    List<String> wrong = new ArrayList<>();
    for (Map.Entry<String, Long> e : header.entrySet()) {
      Long j = java.get(e.getKey());
      if (j == null) wrong.add(e.getKey() + " = " + e.getValue() + " is missing in Java");
      else if (!j.equals(e.getValue())) {
        wrong.add(e.getKey() + " is " + e.getValue() + " in lora4j.h but " + j + " in Java");
      }
    }
    for (String k : java.keySet()) {
      if (!header.containsKey(k)) wrong.add(k + " is in Java but not in lora4j.h");
    }
    assertTrue(wrong.isEmpty(), String.join("\n", wrong));
  }

  @Test
  void everyHeaderFunctionHasItsNativeMethod() throws Exception {
    String text = Files.readString(HEADER).replaceAll("/\\*(?s:.*?)\\*/", " ");
    Set<String> declared = new TreeSet<>();
    Matcher f = FUNCTION.matcher(text);
    while (f.find()) declared.add(f.group(1));
    assertTrue(
        declared.contains("lora4j_weight_info") && declared.size() >= 30,
        "functions parsed from the header: " + declared);
    Set<String> bound = new TreeSet<>();
    for (Method m : Lora4jLibrary.class.getDeclaredMethods()) {
      if (Modifier.isNative(m.getModifiers()) && Modifier.isStatic(m.getModifiers())) {
        bound.add(m.getName());
      }
    }
    Set<String> missing = new TreeSet<>(declared);
    missing.removeAll(bound);
    assertTrue(missing.isEmpty(), "declared in lora4j.h, not bound in Java: " + missing);
    Set<String> extra = new TreeSet<>(bound);
    extra.removeAll(declared);
    assertTrue(extra.isEmpty(), "bound in Java, not declared in lora4j.h: " + extra);
  }

  /** The parser itself: a wrong or missing value is seen, the include guard is not a constant. */
  @Test
  void theParserReadsValuesAndSuffixes() {
    Map<String, Long> m =
        headerConstants(
            "#ifndef LORA4J_H\n#define LORA4J_H\n#define LORA4J_A 7\n#define LORA4J_B 64u /* x */\n"
                + "#define LORA4J_C 0x10\n#define OTHER 3\n  #define LORA4J_IN_TEXT 5\n");
    assertEquals(Map.of("LORA4J_A", 7L, "LORA4J_B", 64L, "LORA4J_C", 16L), m);
  }
}
