package dev.lora4j.fuzz;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Seeded mutations of inputs: byte-level (bit flips, random bytes, inserts, deletes, splices,
 * truncation, interesting tokens) and JSON-structure-aware (delete or rename keys, change value
 * types, extreme numbers, raw NaN/Infinity tokens, duplicate keys, deep nesting, huge arrays).
 * Every decision comes from the {@link SplittableRandom} passed in, so an input is a function of
 * its seed alone.
 */
final class Mutator {
  static final JsonNodeFactory F = JsonNodeFactory.instance;

  /**
   * Reads the seeds; raw values are spliced in after serialization, so writing never nests deep.
   */
  static final ObjectMapper JSON = new ObjectMapper();

  static {
    JSON.getFactory()
        .setStreamReadConstraints(
            StreamReadConstraints.builder().maxStringLength(200_000_000).build());
  }

  /** Tokens that often break parsers: JSON specials, extreme numbers, delimiters. */
  static final String[] TOKENS = {
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\u0000",
    "-1",
    "0",
    "-0",
    "1e309",
    "-1e309",
    "1e-400",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1099511627776",
    "4294967296",
    "0.5",
    "1.0",
    "3.4e38",
    "123456789012345678901234567890",
    "\"\"",
    "\"x\"",
    "\ufffd",
    "\ud83d\ude00",
    "\r\n",
    "\t",
    "//",
    "/*",
    "00",
    "0x10",
    "+1",
    ".5",
    "1.",
    "1e"
  };

  /** Numbers at the edges of int, long, unsigned long and double. */
  static final String[] NUMBERS = {
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "7",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "1099511627776",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e308",
    "1e309",
    "-1e309",
    "4.9e-324",
    "1e-400",
    "0.0",
    "-0.0",
    "0.5",
    "1.5",
    "3.0",
    "1E2",
    "NaN",
    "Infinity",
    "-Infinity"
  };

  private Mutator() {}

  // ------------------------------------------------------------------------------------------
  // bytes
  // ------------------------------------------------------------------------------------------

  /** One to {@code maxOps} byte-level mutations of {@code in} (a new array). */
  static byte[] mutateBytes(SplittableRandom rng, byte[] in, int maxOps) {
    byte[] b = in.clone();
    int ops = 1 + rng.nextInt(maxOps);
    for (int k = 0; k < ops; k++) b = mutateOnce(rng, b);
    return b;
  }

  static byte[] mutateOnce(SplittableRandom rng, byte[] b) {
    int n = b.length;
    switch (rng.nextInt(9)) {
      case 0 -> { // bit flip
        if (n > 0) b[rng.nextInt(n)] ^= (byte) (1 << rng.nextInt(8));
      }
      case 1 -> { // random byte
        if (n > 0) b[rng.nextInt(n)] = (byte) rng.nextInt(256);
      }
      case 2 -> { // interesting byte
        byte[] v = {
          0,
          -1,
          0x7f,
          (byte) 0x80,
          '"',
          '\\',
          '{',
          '}',
          '[',
          ']',
          ',',
          ':',
          '\n',
          ' ',
          '0',
          '9',
          '-'
        };
        if (n > 0) b[rng.nextInt(n)] = v[rng.nextInt(v.length)];
      }
      case 3 -> { // insert random bytes
        byte[] ins = new byte[1 + rng.nextInt(8)];
        for (int i = 0; i < ins.length; i++) ins[i] = (byte) rng.nextInt(256);
        b = insert(b, n == 0 ? 0 : rng.nextInt(n + 1), ins);
      }
      case 4 -> { // insert a token
        b =
            insert(
                b,
                n == 0 ? 0 : rng.nextInt(n + 1),
                TOKENS[rng.nextInt(TOKENS.length)].getBytes(StandardCharsets.UTF_8));
      }
      case 5 -> { // delete a range
        if (n > 0) {
          int at = rng.nextInt(n);
          int len = 1 + rng.nextInt(Math.min(16, n - at));
          b = delete(b, at, len);
        }
      }
      case 6 -> { // duplicate a range
        if (n > 0) {
          int at = rng.nextInt(n);
          int len = 1 + rng.nextInt(Math.min(64, n - at));
          b = insert(b, rng.nextInt(n + 1), Arrays.copyOfRange(b, at, at + len));
        }
      }
      case 7 -> { // truncate
        b = Arrays.copyOf(b, n == 0 ? 0 : rng.nextInt(n));
      }
      default -> { // replace a run of digits with an extreme number
        if (n > 0) {
          int at = rng.nextInt(n);
          while (at < n && !(b[at] >= '0' && b[at] <= '9')) at++;
          if (at < n) {
            int end = at;
            while (end < n && b[end] >= '0' && b[end] <= '9') end++;
            byte[] num = NUMBERS[rng.nextInt(NUMBERS.length)].getBytes(StandardCharsets.US_ASCII);
            b = insert(delete(b, at, end - at), at, num);
          }
        }
      }
    }
    return b;
  }

  static byte[] insert(byte[] b, int at, byte[] ins) {
    byte[] out = new byte[b.length + ins.length];
    System.arraycopy(b, 0, out, 0, at);
    System.arraycopy(ins, 0, out, at, ins.length);
    System.arraycopy(b, at, out, at + ins.length, b.length - at);
    return out;
  }

  static byte[] delete(byte[] b, int at, int len) {
    byte[] out = new byte[b.length - len];
    System.arraycopy(b, 0, out, 0, at);
    System.arraycopy(b, at + len, out, at, b.length - at - len);
    return out;
  }

  /** Byte-level mutation of a string's UTF-8 (invalid UTF-8 decodes to U+FFFD). */
  static String mutateText(SplittableRandom rng, String s, int maxOps) {
    return new String(
        mutateBytes(rng, s.getBytes(StandardCharsets.UTF_8), maxOps), StandardCharsets.UTF_8);
  }

  // ------------------------------------------------------------------------------------------
  // JSON structure
  // ------------------------------------------------------------------------------------------

  /** A JSON document being mutated: a tree plus raw text spliced in for placeholders. */
  static final class Doc {
    final JsonNode root;
    final Map<String, String> raw = new LinkedHashMap<>();

    Doc(JsonNode root) {
      this.root = root;
    }

    /** A placeholder string node replaced by {@code text} when written. */
    JsonNode raw(String text) {
      String key = "@@RAW" + raw.size() + "@@";
      raw.put(key, text);
      return F.textNode(key);
    }

    String write() {
      String s;
      try {
        s = JSON.writeValueAsString(root);
      } catch (JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
      for (Map.Entry<String, String> e : raw.entrySet()) {
        s = s.replace("\"" + e.getKey() + "\"", e.getValue());
      }
      return s.replace("@@DUP@@\"", "\"");
    }
  }

  static JsonNode parse(String json) {
    try {
      return JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code ops} structure-aware mutations of a copy of {@code seed}. */
  static Doc mutateJson(SplittableRandom rng, JsonNode seed, int ops, String[] interestingKeys) {
    Doc d = new Doc(seed.deepCopy());
    for (int k = 0; k < ops; k++) mutateJsonOnce(rng, d, interestingKeys);
    return d;
  }

  static void mutateJsonOnce(SplittableRandom rng, Doc d, String[] keys) {
    List<JsonNode> containers = new ArrayList<>();
    collectContainers(d.root, containers, 0);
    if (containers.isEmpty()) return;
    JsonNode c = containers.get(rng.nextInt(containers.size()));
    if (c instanceof ObjectNode o) {
      List<String> names = new ArrayList<>();
      o.fieldNames().forEachRemaining(names::add);
      String name =
          names.isEmpty() || rng.nextInt(6) == 0
              ? (keys.length > 0 && rng.nextBoolean()
                  ? keys[rng.nextInt(keys.length)]
                  : "k" + rng.nextInt(9))
              : names.get(rng.nextInt(names.size()));
      switch (rng.nextInt(6)) {
        case 0 -> o.remove(name);
        case 1 -> { // rename
          JsonNode v = o.remove(name);
          if (v != null)
            o.set(
                keys.length > 0 && rng.nextBoolean() ? keys[rng.nextInt(keys.length)] : name + "_",
                v);
        }
        case 2 -> { // duplicate key, written raw after the others
          JsonNode v = o.get(name);
          o.set(name + "@@DUP@@", v == null ? randomValue(rng, d, 2) : v);
          // "name@@DUP@@" is written as a second "name"
        }
        default -> o.set(name, randomValue(rng, d, 2));
      }
    } else {
      ArrayNode a = (ArrayNode) c;
      int n = a.size();
      switch (rng.nextInt(5)) {
        case 0 -> {
          if (n > 0) a.remove(rng.nextInt(n));
        }
        case 1 -> a.insert(n == 0 ? 0 : rng.nextInt(n + 1), randomValue(rng, d, 2));
        case 2 -> {
          if (n > 0) a.set(rng.nextInt(n), randomValue(rng, d, 2));
        }
        case 3 -> {
          if (n > 0) a.add(a.get(rng.nextInt(n)).deepCopy());
        }
        default -> a.removeAll();
      }
    }
  }

  private static void collectContainers(JsonNode n, List<JsonNode> out, int depth) {
    if (!n.isContainerNode() || depth > 64 || out.size() > 100_000) return;
    out.add(n);
    for (JsonNode c : n) collectContainers(c, out, depth + 1);
  }

  /** A random JSON value, sometimes raw text (NaN, huge numbers, deep nesting, huge arrays). */
  static JsonNode randomValue(SplittableRandom rng, Doc d, int depth) {
    switch (rng.nextInt(depth <= 0 ? 8 : 12)) {
      case 0:
        return F.nullNode();
      case 1:
        return F.booleanNode(rng.nextBoolean());
      case 2:
        return d.raw(NUMBERS[rng.nextInt(NUMBERS.length)]);
      case 3:
        return F.numberNode(rng.nextInt(-3, 70000));
      case 4:
        return F.numberNode(rng.nextDouble() * Math.pow(10, rng.nextInt(-5, 6)));
      case 5:
        return F.textNode(randomString(rng, 12));
      case 6:
        return d.raw(rng.nextBoolean() ? "NaN" : "-Infinity");
      case 7:
        { // deep nesting
          int depthN = rng.nextBoolean() ? 1 + rng.nextInt(40) : 500 + rng.nextInt(2000);
          String open = rng.nextBoolean() ? "[" : "{\"a\":";
          String close = open.equals("[") ? "]" : "}";
          return d.raw(open.repeat(depthN) + "1" + close.repeat(depthN));
        }
      case 8:
        { // huge array
          int n = rng.nextBoolean() ? rng.nextInt(10) : 1000 + rng.nextInt(20_000);
          StringBuilder sb = new StringBuilder("[");
          String v = NUMBERS[rng.nextInt(NUMBERS.length)];
          for (int i = 0; i < n; i++) sb.append(i == 0 ? "" : ",").append(v);
          return d.raw(sb.append(']').toString());
        }
      case 9:
        {
          ArrayNode a = F.arrayNode();
          int n = rng.nextInt(4);
          for (int i = 0; i < n; i++) a.add(randomValue(rng, d, depth - 1));
          return a;
        }
      default:
        {
          ObjectNode o = F.objectNode();
          int n = rng.nextInt(4);
          for (int i = 0; i < n; i++) o.set(randomString(rng, 4), randomValue(rng, d, depth - 1));
          return o;
        }
    }
  }

  /** A random string mixing ASCII, control chars, specials, BMP, astral and lone surrogates. */
  static String randomString(SplittableRandom rng, int maxLen) {
    int len = rng.nextInt(maxLen + 1);
    StringBuilder sb = new StringBuilder(len);
    for (int i = 0; i < len; i++) appendRandomChar(rng, sb);
    return sb.toString();
  }

  private static final String SPECIAL_CHARS = "<s></s>[INST][/INST]<unk>{{ }}{% %}\u2581 \n";

  static void appendRandomChar(SplittableRandom rng, StringBuilder sb) {
    switch (rng.nextInt(12)) {
      case 0 -> sb.append((char) rng.nextInt(0x20)); // control
      case 1 -> sb.append((char) (0xD800 + rng.nextInt(0x800))); // lone surrogate
      case 2 -> sb.appendCodePoint(0x10000 + rng.nextInt(0x100000)); // astral
      case 3 -> sb.append((char) rng.nextInt(0x80, 0xD800)); // BMP
      case 4 -> sb.append(SPECIAL_CHARS.charAt(rng.nextInt(SPECIAL_CHARS.length())));
      case 5 -> sb.append((char) rng.nextInt(0xE000, 0x10000));
      default -> sb.append((char) rng.nextInt(0x20, 0x7f));
    }
  }

  /** Iterates the fields of an object node (Jackson's {@code fields()} without the deprecation). */
  static Iterator<Map.Entry<String, JsonNode>> fields(JsonNode n) {
    return n.properties().iterator();
  }
}
