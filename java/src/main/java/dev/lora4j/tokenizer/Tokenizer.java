package dev.lora4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Lora4jException;
import dev.lora4j.io.JsonErrors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A pure-Java implementation of the Hugging Face {@code tokenizers} pipeline that the Mistral and
 * Llama (SentencePiece-style) {@code tokenizer.json} files use, producing exactly the ids of
 * Hugging Face {@code tokenizers}:
 *
 * <ul>
 *   <li><b>added tokens</b> ({@code added_tokens}): in {@link #encodeWithSpecialTokens} every added
 *       token written in the text is split out first (leftmost-longest match, honouring {@code
 *       lstrip}, {@code rstrip}, {@code single_word}) and becomes its id, as Hugging Face does by
 *       default; the text between them is normalized and tokenized piece by piece. In {@link
 *       #encode} the text is never searched for added tokens: {@code <s>}, {@code </s>}, {@code
 *       [INST]} written in data are ordinary characters (see DESIGN.md).
 *   <li><b>normalizer</b>: {@code Sequence}, {@code Prepend} (only on a non-empty piece), {@code
 *       Replace} with a string pattern. Mistral v0.1 uses Prepend "▁" + Replace " " → "▁".
 *   <li><b>pre-tokenizer</b>: none, or {@code Metaspace} ({@code replacement}, {@code
 *       prepend_scheme} always/first/never, {@code split}).
 *   <li><b>model</b>: {@code BPE} with ranked merges, {@code byte_fallback} ({@code <0xNN>}
 *       tokens), {@code unk_token} with {@code fuse_unk}, {@code ignore_merges}. The merge loop is
 *       the one of {@code tokenizers} (a priority queue of (rank, position) over a linked list of
 *       symbols), O(n log n) in the length of a word, so a whole document that normalizes to one
 *       word is still fast. Where no merge can join across a boundary character (the metaspace "▁")
 *       that follows another character, a piece is cut before each such boundary and each word's
 *       tokens are kept in a bounded cache: the same ids and spans, merged once a word.
 *   <li><b>decoder</b>: {@code Sequence} of {@code Replace}, {@code ByteFallback}, {@code Fuse},
 *       {@code Strip}; or {@code Metaspace}.
 * </ul>
 *
 * <p>Any other component type in the file is rejected with a {@link Lora4jException} naming it,
 * never silently approximated. Added tokens marked {@code normalized: true} are matched on the raw
 * text (Mistral's are all {@code normalized: false}).
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class Tokenizer {

  private static final ObjectMapper JSON = new ObjectMapper();

  // ---- model ----
  private final Map<String, Integer> vocab;
  private final String[] idToToken;
  private final int[] bmpCharId; // id of a one-char token for each BMP char, or -1
  private final LongIntMap merges; // (left id, right id) -> rank
  private final int[] rankNewId; // rank -> id of the merged token
  private final int[] byteId; // byte -> id of <0xNN>, or -1
  private final boolean byteFallback;
  private final boolean fuseUnk;
  private final boolean ignoreMerges;
  private final int modelUnkId;

  // ---- pipeline ----
  private final List<NormOp> normalizer;
  private final Metaspace metaspace; // null when there is no pre-tokenizer
  private final List<DecodeOp> decoder;

  // ---- added tokens ----
  private final AddedToken[] addedById; // indexed by id, null for ordinary tokens
  private final Map<Character, AddedToken[]> addedByFirstChar; // longest first
  private final Map<String, Integer> addedByContent;

  // ---- special ids ----
  private final int bosId;
  private final int eosId;
  private final int unkId;
  private final int padId;

  private volatile int[] firstMergeRanks; // id -> rank of its first merge, built on first use

  // ---- words ----
  // A normalized piece is cut before every boundary code point (the metaspace "▁") that follows
  // another code point, when no merge can join across such a cut: no merge (left, right) has a
  // left that does not end with it and a right that starts with it (a merge's token is its two
  // strings joined, so one across a cut would be one of these). Then the BPE of the piece is the
  // BPE of its words, one after the other (tokenizers' result, unchanged), and a word seen before
  // is looked up instead of merged again. -1: pieces are merged whole (a merge could cross, the
  // boundary is not a token of its own, or ignore_merges looks whole words up).
  private final int wordBoundary;
  // word (its code points) -> {id, first, last code point of the word it covers} per token
  private final ConcurrentHashMap<WordKey, int[]> words = new ConcurrentHashMap<>();
  static final int WORDS_KEPT = 1 << 16; // the cache stops growing at this many words
  static final int WORD_KEPT_LENGTH = 48; // longer words (code points) are merged every time

  private record AddedToken(
      int id,
      String content,
      boolean special,
      boolean lstrip,
      boolean rstrip,
      boolean singleWord) {}

  private sealed interface NormOp permits Prepend, Replace {}

  private record Prepend(int[] cps) implements NormOp {}

  private record Replace(int[] pattern, int[] content) implements NormOp {}

  private record Metaspace(int replacement, String scheme, boolean split) {}

  private sealed interface DecodeOp permits DReplace, DByteFallback, DFuse, DStrip {}

  private record DReplace(String pattern, String content) implements DecodeOp {}

  private record DByteFallback() implements DecodeOp {}

  private record DFuse() implements DecodeOp {}

  private record DStrip(String content, int start, int stop) implements DecodeOp {}

  // ------------------------------------------------------------------------------------------
  // loading
  // ------------------------------------------------------------------------------------------

  /**
   * Loads a tokenizer from a Hugging Face {@code tokenizer.json}. When a {@code
   * tokenizer_config.json} lies next to it, the BOS, EOS, UNK and PAD tokens are taken from it;
   * otherwise BOS is {@code <s>}, EOS {@code </s>} (when they exist), UNK the model's {@code
   * unk_token}, and there is no PAD.
   *
   * @param tokenizerJson path of {@code tokenizer.json}
   * @return the tokenizer
   * @throws Lora4jException when the file cannot be read or uses an unsupported component
   */
  public static Tokenizer fromFile(Path tokenizerJson) {
    JsonNode root;
    try {
      root = JSON.readTree(tokenizerJson.toFile());
    } catch (IOException e) {
      throw new Lora4jException(
          "cannot read tokenizer file " + tokenizerJson + ": " + JsonErrors.describe(e), e);
    }
    JsonNode config = null;
    Path parent = tokenizerJson.toAbsolutePath().getParent();
    Path configPath = parent == null ? null : parent.resolve("tokenizer_config.json");
    if (configPath != null && Files.isRegularFile(configPath)) {
      try {
        config = JSON.readTree(configPath.toFile());
      } catch (IOException e) {
        throw new Lora4jException("cannot read " + configPath + ": " + JsonErrors.describe(e), e);
      }
    }
    try {
      return new Tokenizer(root, config, true);
    } catch (Lora4jException e) {
      throw new Lora4jException(tokenizerJson + ": " + e.getMessage(), e);
    }
  }

  /**
   * Loads {@code tokenizer.json} (and {@code tokenizer_config.json} when present) from a Hugging
   * Face model folder.
   *
   * @param dir the model folder
   * @return the tokenizer
   * @throws Lora4jException when the folder has no readable, supported {@code tokenizer.json}
   */
  public static Tokenizer fromModelDir(Path dir) {
    Path file = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(file)) {
      throw new Lora4jException("no tokenizer.json in " + dir);
    }
    return fromFile(file);
  }

  /**
   * The same tokenizer merging every normalized piece whole (no words, no cache): the reference the
   * word split is tested against.
   */
  static Tokenizer withoutWordSplit(Path tokenizerJson) throws IOException {
    return new Tokenizer(JSON.readTree(tokenizerJson.toFile()), null, false);
  }

  private Tokenizer(JsonNode root, JsonNode config, boolean splitWords) {
    JsonNode model = root.path("model");
    if (!model.isObject()) {
      throw new Lora4jException(
          "has no \"model\" section (the tokenizer's type, vocab and merges): is it a Hugging"
              + " Face tokenizer.json?");
    }
    if (!model.path("vocab").isObject() || model.path("vocab").isEmpty()) {
      throw new Lora4jException("its \"model\" section has no \"vocab\" (an object of tokens)");
    }
    String type = model.path("type").asText("BPE");
    if (!type.equals("BPE")) {
      throw new Lora4jException("unsupported tokenizer model type '" + type + "' (only BPE)");
    }
    if (!model.path("dropout").isNull()
        && !model.path("dropout").isMissingNode()
        && model.path("dropout").asDouble(0) != 0) {
      throw new Lora4jException("BPE dropout is not supported");
    }
    if (!model.path("continuing_subword_prefix").isNull()
            && !model.path("continuing_subword_prefix").isMissingNode()
        || !model.path("end_of_word_suffix").isNull()
            && !model.path("end_of_word_suffix").isMissingNode()) {
      throw new Lora4jException(
          "BPE continuing_subword_prefix / end_of_word_suffix are not supported");
    }
    // vocabulary
    vocab = new HashMap<>();
    int maxId = -1;
    // ids index arrays: each must be an integer below the number of entries of the file, so
    // a corrupt id can neither index out of bounds nor make us allocate a huge table
    int idLimit = model.path("vocab").size() + root.path("added_tokens").size();
    for (Iterator<Map.Entry<String, JsonNode>> it = model.path("vocab").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      int id = tokenId(e.getValue(), idLimit, "model.vocab entry '" + e.getKey() + "'");
      vocab.put(e.getKey(), id);
      maxId = Math.max(maxId, id);
    }
    List<AddedToken> added = new ArrayList<>();
    for (JsonNode a : root.path("added_tokens")) {
      AddedToken t =
          new AddedToken(
              tokenId(
                  a.path("id"), idLimit, "added_tokens entry '" + a.path("content").asText() + "'"),
              a.path("content").asText(),
              a.path("special").asBoolean(false),
              a.path("lstrip").asBoolean(false),
              a.path("rstrip").asBoolean(false),
              a.path("single_word").asBoolean(false));
      if (t.content.isEmpty()) {
        throw new Lora4jException("empty added token with id " + t.id);
      }
      added.add(t);
      maxId = Math.max(maxId, t.id);
    }
    idToToken = new String[maxId + 1];
    for (Map.Entry<String, Integer> e : vocab.entrySet()) {
      idToToken[e.getValue()] = e.getKey();
    }
    addedById = new AddedToken[maxId + 1];
    Map<Character, List<AddedToken>> byFirst = new HashMap<>();
    addedByContent = new HashMap<>();
    for (AddedToken t : added) {
      idToToken[t.id] = t.content;
      addedById[t.id] = t;
      addedByContent.put(t.content, t.id);
      byFirst.computeIfAbsent(t.content.charAt(0), k -> new ArrayList<>()).add(t);
    }
    addedByFirstChar = new HashMap<>();
    for (Map.Entry<Character, List<AddedToken>> e : byFirst.entrySet()) {
      AddedToken[] arr = e.getValue().toArray(new AddedToken[0]);
      Arrays.sort(arr, Comparator.comparingInt((AddedToken t) -> -t.content.length()));
      addedByFirstChar.put(e.getKey(), arr);
    }
    bmpCharId = new int[65536];
    Arrays.fill(bmpCharId, -1);
    for (Map.Entry<String, Integer> e : vocab.entrySet()) {
      String s = e.getKey();
      if (s.length() == 1) {
        bmpCharId[s.charAt(0)] = e.getValue();
      }
    }
    // merges, ranked by position
    JsonNode mergeList = model.path("merges");
    metaspace = parsePreTokenizer(root.path("pre_tokenizer"));
    int boundary = metaspace != null ? metaspace.replacement : 0x2581;
    boolean crossing = false; // a merge that could join across a cut before the boundary
    merges = new LongIntMap(Math.max(16, mergeList.size() * 2));
    rankNewId = new int[mergeList.size()];
    int rank = 0;
    for (JsonNode m : mergeList) {
      String left;
      String right;
      if (m.isArray()) {
        if (m.size() != 2 || !m.get(0).isTextual() || !m.get(1).isTextual()) {
          throw new Lora4jException("malformed merge " + m + " (expected two strings)");
        }
        left = m.get(0).asText();
        right = m.get(1).asText();
      } else {
        String s = m.asText();
        int sp = s.indexOf(' ', 1);
        if (sp < 0) {
          throw new Lora4jException("malformed merge '" + s + "'");
        }
        left = s.substring(0, sp);
        right = s.substring(sp + 1);
      }
      Integer a = vocab.get(left);
      Integer b = vocab.get(right);
      Integer n = vocab.get(left + right);
      if (a == null || b == null || n == null) {
        throw new Lora4jException(
            "merge '" + left + " " + right + "' uses a token outside the vocabulary");
      }
      // (an empty token, which only a damaged file has, keeps pieces whole)
      crossing |=
          left.isEmpty()
              || right.isEmpty()
              || right.codePointAt(0) == boundary
                  && left.codePointBefore(left.length()) != boundary;
      merges.put(pairKey(a, b), rank); // a repeated pair keeps its last rank, as tokenizers does
      rankNewId[rank] = n;
      rank++;
    }
    byteFallback = model.path("byte_fallback").asBoolean(false);
    byteId = new int[256];
    for (int b = 0; b < 256; b++) {
      Integer id = vocab.get(String.format("<0x%02X>", b));
      byteId[b] = id == null ? -1 : id;
    }
    fuseUnk = model.path("fuse_unk").asBoolean(false);
    ignoreMerges = model.path("ignore_merges").asBoolean(false);
    String unkTok = model.path("unk_token").isTextual() ? model.path("unk_token").asText() : null;
    modelUnkId = unkTok == null ? -1 : vocab.getOrDefault(unkTok, -1);
    wordBoundary =
        splitWords && !crossing && !ignoreMerges && charId(boundary) >= 0 ? boundary : -1;

    normalizer = new ArrayList<>();
    parseNormalizer(root.path("normalizer"), normalizer);
    decoder = new ArrayList<>();
    parseDecoder(root.path("decoder"), decoder);

    bosId = specialId(config, "bos_token", "<s>");
    eosId = specialId(config, "eos_token", "</s>");
    int unk = specialId(config, "unk_token", null);
    unkId = unk >= 0 ? unk : modelUnkId;
    padId = specialId(config, "pad_token", null);
  }

  private static int tokenId(JsonNode n, int limit, String what) {
    if (!n.isIntegralNumber()
        || !n.canConvertToInt()
        || n.intValue() < 0
        || n.intValue() >= limit) {
      throw new Lora4jException(
          what
              + " has id "
              + n
              + "; ids must be integers from 0 to "
              + (limit - 1)
              + " (the number of vocabulary and added-token entries)");
    }
    return n.intValue();
  }

  private int specialId(JsonNode config, String field, String fallback) {
    String content = fallback;
    if (config != null && config.has(field)) {
      JsonNode n = config.get(field);
      if (n.isNull()) {
        return -1;
      }
      content = n.isTextual() ? n.asText() : n.path("content").asText(null);
      if (content == null) {
        throw new Lora4jException("tokenizer_config.json: cannot read " + field);
      }
      int id = tokenToId(content);
      if (id < 0) {
        throw new Lora4jException(
            "tokenizer_config.json: " + field + " '" + content + "' is not in the vocabulary");
      }
      return id;
    }
    return content == null ? -1 : tokenToId(content);
  }

  private static int[] cps(String s) {
    return s.codePoints().toArray();
  }

  private static void parseNormalizer(JsonNode n, List<NormOp> out) {
    if (n == null || n.isNull() || n.isMissingNode()) {
      return;
    }
    String type = n.path("type").asText();
    switch (type) {
      case "Sequence" -> {
        for (JsonNode c : n.path("normalizers")) {
          parseNormalizer(c, out);
        }
      }
      case "Prepend" -> out.add(new Prepend(cps(n.path("prepend").asText())));
      case "Replace" -> {
        JsonNode p = n.path("pattern");
        if (!p.has("String")) {
          throw new Lora4jException(
              "unsupported Replace normalizer pattern " + p + " (only String)");
        }
        String pat = p.get("String").asText();
        if (pat.isEmpty()) {
          throw new Lora4jException("empty Replace normalizer pattern");
        }
        out.add(new Replace(cps(pat), cps(n.path("content").asText())));
      }
      default -> throw new Lora4jException("unsupported normalizer type '" + type + "'");
    }
  }

  private static Metaspace parsePreTokenizer(JsonNode n) {
    if (n == null || n.isNull() || n.isMissingNode()) {
      return null;
    }
    String type = n.path("type").asText();
    if (type.equals("Sequence") && n.path("pretokenizers").size() == 1) {
      return parsePreTokenizer(n.path("pretokenizers").get(0));
    }
    if (!type.equals("Metaspace")) {
      throw new Lora4jException("unsupported pre_tokenizer type '" + type + "' (only Metaspace)");
    }
    String rep = n.path("replacement").asText("\u2581");
    if (rep.isEmpty()) {
      throw new Lora4jException("Metaspace pre_tokenizer has an empty replacement");
    }
    String scheme;
    if (n.has("prepend_scheme")) {
      scheme = n.get("prepend_scheme").asText();
    } else {
      scheme = n.path("add_prefix_space").asBoolean(true) ? "always" : "never";
    }
    if (!scheme.equals("always") && !scheme.equals("first") && !scheme.equals("never")) {
      throw new Lora4jException("unsupported Metaspace prepend_scheme '" + scheme + "'");
    }
    return new Metaspace(rep.codePointAt(0), scheme, n.path("split").asBoolean(true));
  }

  private static void parseDecoder(JsonNode n, List<DecodeOp> out) {
    if (n == null || n.isNull() || n.isMissingNode()) {
      return;
    }
    String type = n.path("type").asText();
    switch (type) {
      case "Sequence" -> {
        for (JsonNode c : n.path("decoders")) {
          parseDecoder(c, out);
        }
      }
      case "Replace" -> {
        JsonNode p = n.path("pattern");
        if (!p.has("String")) {
          throw new Lora4jException("unsupported Replace decoder pattern " + p + " (only String)");
        }
        out.add(new DReplace(p.get("String").asText(), n.path("content").asText()));
      }
      case "ByteFallback" -> out.add(new DByteFallback());
      case "Fuse" -> out.add(new DFuse());
      case "Strip" -> {
        String content = n.path("content").asText(" ");
        if (content.isEmpty()) {
          throw new Lora4jException("Strip decoder has an empty content");
        }
        out.add(new DStrip(content, n.path("start").asInt(0), n.path("stop").asInt(0)));
      }
      case "Metaspace" -> {
        String rep = n.path("replacement").asText("\u2581");
        String scheme =
            n.has("prepend_scheme")
                ? n.get("prepend_scheme").asText()
                : (n.path("add_prefix_space").asBoolean(true) ? "always" : "never");
        out.add(new DReplace(rep, " "));
        out.add(new DFuse());
        if (!scheme.equals("never")) {
          out.add(new DStrip(" ", 1, 0));
        }
      }
      default -> throw new Lora4jException("unsupported decoder type '" + type + "'");
    }
  }

  // ------------------------------------------------------------------------------------------
  // public API
  // ------------------------------------------------------------------------------------------

  /**
   * Tokenizes text as data: special-token text such as {@code <s>}, {@code </s>} or {@code [INST]}
   * written in {@code text} is tokenized as ordinary characters, never as a control token. Equals
   * Hugging Face {@code tokenizers} with the same file and an empty {@code added_tokens} list.
   *
   * @param text the text
   * @param addBos whether to put {@link #bosId()} first (the post-processor of Mistral/Llama); an
   *     end-of-sequence token is never appended
   * @return the token ids
   */
  public int[] encode(String text, boolean addBos) {
    IntList ids = new IntList(text.length() / 3 + 4);
    if (addBos) {
      requireBos();
      ids.add(bosId);
    }
    encodePiece(text, 0, text.length(), ids, null, null);
    return ids.toArray();
  }

  /**
   * Tokenizes text the way Hugging Face does by default ({@code split_special_tokens=False}): every
   * added token written in {@code text} ({@code <s>}, {@code </s>}, {@code <unk>} for Mistral v0.1)
   * becomes its id, and the text between them is tokenized piece by piece. Meant for text that
   * comes from a template, never for user data.
   *
   * @param text the text
   * @param addBos whether to put {@link #bosId()} first
   * @return the token ids
   */
  public int[] encodeWithSpecialTokens(String text, boolean addBos) {
    IntList ids = new IntList(text.length() / 3 + 4);
    if (addBos) {
      requireBos();
      ids.add(bosId);
    }
    encodeParsingAddedTokens(text, 0, text.length(), ids, null, null);
    return ids.toArray();
  }

  /**
   * Turns ids back into text as Hugging Face {@code decode} does (with {@code
   * clean_up_tokenization_spaces=False}): tokens are mapped to their strings and passed through the
   * decoder of {@code tokenizer.json}; for Mistral v0.1 "▁" becomes a space, runs of {@code <0xNN>}
   * byte tokens are reassembled into UTF-8 (an invalid run gives one U+FFFD per byte), and one
   * leading space of the whole text is removed.
   *
   * @param ids token ids
   * @param skipSpecialTokens whether to leave out added tokens marked special ({@code <s>}, {@code
   *     </s>}, {@code <unk>})
   * @return the text
   * @throws IllegalArgumentException for an id outside the vocabulary
   */
  public String decode(int[] ids, boolean skipSpecialTokens) {
    List<String> tokens = new ArrayList<>(ids.length);
    for (int id : ids) {
      if (skipSpecialTokens && isSpecial(id)) {
        continue;
      }
      tokens.add(idToToken(id));
    }
    for (DecodeOp op : decoder) {
      tokens = applyDecoder(op, tokens);
    }
    StringBuilder sb = new StringBuilder();
    for (String t : tokens) {
      sb.append(t);
    }
    return sb.toString();
  }

  /**
   * @param token a token string (a vocabulary entry or an added token)
   * @return its id, or -1 when there is none
   */
  public int tokenToId(String token) {
    Integer added = addedByContent.get(token);
    return added != null ? added : vocab.getOrDefault(token, -1);
  }

  /**
   * @param id a token id
   * @return the token's string, as in {@code tokenizer.json} (e.g. {@code "▁the"}, {@code
   *     "<0x0A>"})
   * @throws IllegalArgumentException when the id is outside the vocabulary
   */
  public String idToToken(int id) {
    if (id < 0 || id >= idToToken.length || idToToken[id] == null) {
      throw new IllegalArgumentException(
          "token id " + id + " is outside the vocabulary of size " + vocabSize());
    }
    return idToToken[id];
  }

  /**
   * @return the id of the beginning-of-sequence token, or -1 when there is none
   */
  public int bosId() {
    return bosId;
  }

  /**
   * @return the id of the end-of-sequence token, or -1 when there is none
   */
  public int eosId() {
    return eosId;
  }

  /**
   * @return the id of the unknown token, or -1 when there is none
   */
  public int unkId() {
    return unkId;
  }

  /**
   * @return the id of the padding token from {@code tokenizer_config.json}, or -1 when none is set
   */
  public int padId() {
    return padId;
  }

  /**
   * @return the number of token ids (the largest id plus one, added tokens included)
   */
  public int vocabSize() {
    return idToToken.length;
  }

  /**
   * @param id a token id
   * @return whether the id is an added token marked {@code special} (a control token)
   */
  public boolean isSpecial(int id) {
    return id >= 0 && id < addedById.length && addedById[id] != null && addedById[id].special;
  }

  /**
   * @return the content of every added token, the strings {@link #encodeWithSpecialTokens} parses
   */
  public List<String> addedTokens() {
    List<String> out = new ArrayList<>();
    for (AddedToken t : addedById) {
      if (t != null) {
        out.add(t.content);
      }
    }
    return out;
  }

  /**
   * @param id a token id
   * @return the rank (position in {@code merges}) of the first merge that produces the token, or -1
   *     when no merge produces it (single characters, byte tokens, added tokens)
   */
  public int firstMergeRank(int id) {
    int[] first = firstMergeRanks;
    if (first == null) {
      first = new int[idToToken.length];
      Arrays.fill(first, -1);
      for (int r = rankNewId.length - 1; r >= 0; r--) {
        first[rankNewId[r]] = r;
      }
      firstMergeRanks = first;
    }
    return id >= 0 && id < first.length ? first[id] : -1;
  }

  /**
   * @return whether characters outside the vocabulary become {@code <0xNN>} byte tokens
   */
  public boolean byteFallback() {
    return byteFallback;
  }

  /**
   * @param id a token id
   * @return the byte a {@code <0xNN>} byte-fallback token stands for, or -1 for other tokens
   */
  public int byteValue(int id) {
    for (int b = 0; b < 256; b++) {
      if (byteId[b] == id) {
        return b;
      }
    }
    return -1;
  }

  /**
   * @param id a token id
   * @return whether the id is one of {@code added_tokens} (special or not)
   */
  public boolean isAddedToken(int id) {
    return id >= 0 && id < addedById.length && addedById[id] != null;
  }

  /**
   * @return whether encoding puts "▁" before the text (a {@code Prepend} normalizer of "▁", or a
   *     {@code Metaspace} pre-tokenizer that prepends): SentencePiece's {@code add_dummy_prefix}
   */
  public boolean prependsSpace() {
    for (NormOp op : normalizer) {
      if (op instanceof Prepend p && Arrays.equals(p.cps, new int[] {'\u2581'})) {
        return true;
      }
    }
    return metaspace != null && !metaspace.scheme.equals("never");
  }

  /**
   * Where llama.cpp's SentencePiece tokenizer (which replaces spaces with "▁", prepends one when
   * {@link #prependsSpace()}, then repeatedly merges the adjacent pair that forms the vocabulary
   * token of highest score, scores being {@code -firstMergeRank}) would tokenize text differently
   * from this tokenizer. It reproduces ranked BPE exactly when every pair of tokens that joins into
   * a token is a merge and the merges of each token are consecutive, as in tokenizers converted
   * from SentencePiece (Mistral, Llama 2).
   *
   * @return the differences found, empty when none
   */
  public List<String> sentencePieceDifferences() {
    List<String> out = new ArrayList<>();
    if (ignoreMerges) {
      out.add("the BPE model sets ignore_merges (whole words are looked up first)");
    }
    if (!byteFallback) {
      out.add(
          "the BPE model has no byte_fallback: llama.cpp writes byte tokens where this"
              + " tokenizer writes the unknown token");
    }
    for (NormOp op : normalizer) {
      boolean ok =
          op instanceof Prepend p && Arrays.equals(p.cps, new int[] {'\u2581'})
              || op instanceof Replace r
                  && Arrays.equals(r.pattern, new int[] {' '})
                  && Arrays.equals(r.content, new int[] {'\u2581'});
      if (!ok) {
        out.add("the normalizer does more than prepend \"\u2581\" and replace spaces with it");
        break;
      }
    }
    if (metaspace != null && metaspace.replacement != '\u2581') {
      out.add(
          "the Metaspace pre-tokenizer replaces spaces with U+"
              + Integer.toHexString(metaspace.replacement)
              + ", not \"\u2581\"");
    }
    if (metaspace != null && !metaspace.scheme.equals("never")) {
      out.add(
          "the Metaspace pre-tokenizer does not prepend \"\u2581\" to text that starts with a"
              + " space; llama.cpp always prepends one");
    }
    // merges of one token consecutive, and every joining pair a merge
    int lastNew = -1;
    java.util.BitSet seen = new java.util.BitSet(idToToken.length);
    int scattered = 0;
    for (int id : rankNewId) {
      if (id != lastNew && seen.get(id)) {
        scattered++;
      }
      seen.set(id);
      lastNew = id;
    }
    if (scattered > 0) {
      out.add(scattered + " tokens have merges that are not consecutive in the merge list");
    }
    int missing = 0;
    for (Map.Entry<String, Integer> e : vocab.entrySet()) {
      if (!seen.get(e.getValue())) {
        continue;
      }
      String s = e.getKey();
      for (int k = s.offsetByCodePoints(0, 1); k < s.length(); k = s.offsetByCodePoints(k, 1)) {
        Integer a = vocab.get(s.substring(0, k));
        Integer b = vocab.get(s.substring(k));
        if (a != null && b != null && merges.get(pairKey(a, b)) < 0) {
          missing++;
        }
      }
    }
    if (missing > 0) {
      out.add(missing + " pairs of tokens join into a token without being a merge");
    }
    return out;
  }

  private void requireBos() {
    if (bosId < 0) {
      throw new Lora4jException("this tokenizer has no BOS token");
    }
  }

  // ------------------------------------------------------------------------------------------
  // encoding internals (package-private hooks for ChatTemplate: offsets into the source text)
  // ------------------------------------------------------------------------------------------

  /**
   * Encodes {@code text[from, to)} parsing added tokens; when {@code starts} is not null, the
   * source span [start, end) of every token in {@code text} is appended to starts/ends.
   */
  void encodeParsingAddedTokens(
      String text, int from, int to, IntList ids, IntList starts, IntList ends) {
    encodeParsingAddedTokens(text, from, to, ids, starts, ends, null);
  }

  /**
   * As above; when {@code owners} is not null, an added token is recognized only where every one of
   * its chars has owner -1 (written by a chat template), so message text stays literal.
   */
  void encodeParsingAddedTokens(
      String text, int from, int to, IntList ids, IntList starts, IntList ends, Str owners) {
    int pieceStart = from;
    int i = from;
    while (i < to) {
      AddedToken[] cands = addedByFirstChar.get(text.charAt(i));
      AddedToken hit = null;
      if (cands != null) {
        for (AddedToken t : cands) {
          if (text.startsWith(t.content, i)
              && i + t.content.length() <= to
              && (!t.singleWord || isWordBoundary(text, from, to, i, i + t.content.length()))
              && (owners == null || owners.templateOnly(i, i + t.content.length()))) {
            hit = t;
            break;
          }
        }
      }
      if (hit == null) {
        i++;
        continue;
      }
      int mStart = i;
      int mEnd = i + hit.content.length();
      if (hit.lstrip) {
        while (mStart > pieceStart && Character.isWhitespace(text.charAt(mStart - 1))) {
          mStart--;
        }
      }
      if (hit.rstrip) {
        while (mEnd < to && Character.isWhitespace(text.charAt(mEnd))) {
          mEnd++;
        }
      }
      encodePiece(text, pieceStart, mStart, ids, starts, ends);
      ids.add(hit.id);
      if (starts != null) {
        starts.add(i);
        ends.add(i + hit.content.length());
      }
      i = mEnd;
      pieceStart = mEnd;
    }
    encodePiece(text, pieceStart, to, ids, starts, ends);
  }

  private static boolean isWordBoundary(String text, int from, int to, int s, int e) {
    boolean leftOk = s == from || !isWordChar(text.charAt(s - 1));
    boolean rightOk = e == to || !isWordChar(text.charAt(e));
    return leftOk && rightOk;
  }

  private static boolean isWordChar(char c) {
    return Character.isLetterOrDigit(c) || c == '_';
  }

  /** Encodes {@code text[from, to)} literally (normalizer, pre-tokenizer, BPE). */
  void encodePiece(String text, int from, int to, IntList ids, IntList starts, IntList ends) {
    if (from >= to) {
      return;
    }
    // code points with their source spans; a leading Prepend of the normalizer written first (the
    // piece is not empty, so it applies, its code points spanning [from, from) as prepend gives)
    int n = text.codePointCount(from, to);
    int[] lead =
        !normalizer.isEmpty() && normalizer.get(0) instanceof Prepend p ? p.cps : new int[0];
    IntList cp = new IntList(n + lead.length + 2);
    IntList cs = new IntList(n + lead.length + 2);
    IntList ce = new IntList(n + lead.length + 2);
    for (int c : lead) {
      cp.add(c);
      cs.add(from);
      ce.add(from);
    }
    for (int i = from; i < to; ) {
      int c = text.codePointAt(i);
      int len = Character.charCount(c);
      cp.add(c);
      cs.add(i);
      ce.add(i + len);
      i += len;
    }
    Norm norm = new Norm(cp, cs, ce);
    for (NormOp op : lead.length > 0 ? normalizer.subList(1, normalizer.size()) : normalizer) {
      if (op instanceof Prepend p) {
        norm.prepend(p.cps);
      } else if (op instanceof Replace r) {
        norm.replace(r.pattern, r.content);
      }
    }
    if (metaspace == null) {
      bpe(norm, 0, norm.cp.size(), ids, starts, ends);
      return;
    }
    norm.replace(new int[] {' '}, new int[] {metaspace.replacement});
    boolean startsWithRep = norm.cp.size() > 0 && norm.cp.get(0) == metaspace.replacement;
    if (!startsWithRep
        && norm.cp.size() > 0
        && (metaspace.scheme.equals("always") || metaspace.scheme.equals("first") && from == 0)) {
      norm.prepend(new int[] {metaspace.replacement});
    }
    if (!metaspace.split) {
      bpe(norm, 0, norm.cp.size(), ids, starts, ends);
      return;
    }
    int wStart = 0;
    for (int i = 1; i < norm.cp.size(); i++) {
      if (norm.cp.get(i) == metaspace.replacement) {
        bpe(norm, wStart, i, ids, starts, ends);
        wStart = i;
      }
    }
    bpe(norm, wStart, norm.cp.size(), ids, starts, ends);
  }

  /** A normalized string: code points, each with the source span it came from. */
  private static final class Norm {
    IntList cp;
    IntList s;
    IntList e;

    Norm(IntList cp, IntList s, IntList e) {
      this.cp = cp;
      this.s = s;
      this.e = e;
    }

    void prepend(int[] add) {
      if (cp.size() == 0 || add.length == 0) {
        return;
      }
      int at = s.get(0);
      IntList ncp = new IntList(cp.size() + add.length);
      IntList ns = new IntList(cp.size() + add.length);
      IntList ne = new IntList(cp.size() + add.length);
      for (int c : add) {
        ncp.add(c);
        ns.add(at);
        ne.add(at);
      }
      ncp.addAll(cp);
      ns.addAll(s);
      ne.addAll(e);
      cp = ncp;
      s = ns;
      e = ne;
    }

    void replace(int[] pattern, int[] content) {
      if (pattern.length == 1 && content.length == 1) {
        // one code point for one: in place, each keeps its span (as the copy below would)
        for (int i = 0; i < cp.n; i++) {
          if (cp.a[i] == pattern[0]) {
            cp.a[i] = content[0];
          }
        }
        return;
      }
      int n = cp.size();
      IntList ncp = new IntList(n);
      IntList ns = new IntList(n);
      IntList ne = new IntList(n);
      int i = 0;
      while (i < n) {
        if (matches(pattern, i)) {
          int st = s.get(i);
          int en = e.get(i + pattern.length - 1);
          for (int c : content) {
            ncp.add(c);
            ns.add(st);
            ne.add(en);
          }
          i += pattern.length;
        } else {
          ncp.add(cp.get(i));
          ns.add(s.get(i));
          ne.add(e.get(i));
          i++;
        }
      }
      cp = ncp;
      s = ns;
      e = ne;
    }

    private boolean matches(int[] pattern, int at) {
      if (at + pattern.length > cp.size()) {
        return false;
      }
      for (int k = 0; k < pattern.length; k++) {
        if (cp.get(at + k) != pattern[k]) {
          return false;
        }
      }
      return true;
    }
  }

  private int charId(int c) {
    if (c < 65536) {
      return bmpCharId[c];
    }
    return vocab.getOrDefault(new String(Character.toChars(c)), -1);
  }

  /** Whether pieces are cut into words (the vocabulary allows it). */
  boolean splitsWords() {
    return wordBoundary >= 0;
  }

  /** Words in the cache. */
  int wordsKept() {
    return words.size();
  }

  /** Empties the cache of words (TokenizerBenchmark's first pass over new text). */
  void forgetWords() {
    words.clear();
  }

  /**
   * BPE of norm.cp[from, to): word by word where the piece can be cut ({@link #wordBoundary}), each
   * word looked up in the cache of words already merged or merged and kept there.
   */
  private void bpe(Norm norm, int from, int to, IntList ids, IntList starts, IntList ends) {
    if (from >= to) {
      return;
    }
    if (wordBoundary < 0) {
      emit(norm, from, merge(norm, from, to), ids, starts, ends);
      return;
    }
    int word = from;
    for (int i = from + 1; i <= to; i++) {
      if (i < to && (norm.cp.get(i) != wordBoundary || norm.cp.get(i - 1) == wordBoundary)) {
        continue;
      }
      int[] tokens;
      if (i - word > WORD_KEPT_LENGTH) {
        tokens = merge(norm, word, i);
      } else {
        WordKey w = new WordKey(norm.cp.a, word, i);
        tokens = words.get(w);
        if (tokens == null) {
          tokens = merge(norm, word, i);
          if (words.size() < WORDS_KEPT) {
            words.putIfAbsent(w.copy(), tokens);
          }
        }
      }
      emit(norm, word, tokens, ids, starts, ends);
      word = i;
    }
  }

  /**
   * A word's code points as a key: a[from, to) (a lookup reads the piece's own array; a kept key
   * holds a copy).
   */
  private static final class WordKey {
    final int[] a;
    final int from;
    final int to;
    final int hash;

    WordKey(int[] a, int from, int to) {
      this.a = a;
      this.from = from;
      this.to = to;
      int h = 1;
      for (int k = from; k < to; k++) {
        h = 31 * h + a[k];
      }
      this.hash = h;
    }

    WordKey copy() {
      return new WordKey(Arrays.copyOfRange(a, from, to), 0, to - from);
    }

    @Override
    public int hashCode() {
      return hash;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof WordKey w
          && w.hash == hash
          && Arrays.equals(a, from, to, w.a, w.from, w.to);
    }
  }

  /**
   * Appends a word's tokens ({id, first, last} per token, code points counted from from) with the
   * source span of each: from the first code point's start to the last one's end (the spans of the
   * normalized code points grow with their position).
   */
  private static void emit(
      Norm norm, int from, int[] tokens, IntList ids, IntList starts, IntList ends) {
    for (int t = 0; t < tokens.length; t += 3) {
      ids.add(tokens[t]);
      if (starts != null) {
        starts.add(norm.s.get(from + tokens[t + 1]));
        ends.add(norm.e.get(from + tokens[t + 2]));
      }
    }
  }

  /**
   * BPE of one word, norm.cp[from, to): the algorithm of {@code tokenizers}' {@code
   * Word::merge_all}: a min-heap of (rank, position); an entry is stale when the pair now at that
   * position no longer merges into the entry's token. Returns {id, first, last} per token, the
   * first and last code point (counted from from) that the token covers.
   */
  private int[] merge(Norm norm, int from, int to) {
    if (ignoreMerges) {
      StringBuilder sb = new StringBuilder();
      for (int i = from; i < to; i++) {
        sb.appendCodePoint(norm.cp.get(i));
      }
      Integer whole = vocab.get(sb.toString());
      if (whole != null) {
        return new int[] {whole, 0, to - 1 - from};
      }
    }
    int cap = 0;
    for (int i = from; i < to; i++) {
      int c = norm.cp.get(i);
      cap += charId(c) >= 0 ? 1 : (c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4);
    }
    int[] sym = new int[cap];
    int[] sStart = new int[cap]; // first and last code point of the symbol, counted from from
    int[] sEnd = new int[cap];
    int n = 0;
    boolean lastUnk = false;
    for (int i = from; i < to; i++) {
      int c = norm.cp.get(i);
      int id = charId(c);
      int at = i - from; // the symbol's first and last code point
      if (id >= 0) {
        sym[n] = id;
        sStart[n] = at;
        sEnd[n] = at;
        n++;
        lastUnk = false;
        continue;
      }
      if (byteFallback) {
        byte[] bytes = new String(Character.toChars(c)).getBytes(StandardCharsets.UTF_8);
        boolean all = true;
        for (byte b : bytes) {
          all &= byteId[b & 0xff] >= 0;
        }
        if (all) {
          for (byte b : bytes) {
            sym[n] = byteId[b & 0xff];
            sStart[n] = at;
            sEnd[n] = at;
            n++;
          }
          lastUnk = false;
          continue;
        }
      }
      if (modelUnkId < 0) {
        throw new Lora4jException(
            "character U+"
                + Integer.toHexString(c).toUpperCase()
                + " is not in the vocabulary and the tokenizer has no unk_token");
      }
      if (fuseUnk && lastUnk) {
        sEnd[n - 1] = at;
      } else {
        sym[n] = modelUnkId;
        sStart[n] = at;
        sEnd[n] = at;
        n++;
      }
      lastUnk = true;
    }
    int[] prev = new int[n];
    int[] next = new int[n];
    boolean[] dead = new boolean[n];
    for (int i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    LongHeap heap = new LongHeap(n);
    for (int i = 0; i + 1 < n; i++) {
      int r = merges.get(pairKey(sym[i], sym[i + 1]));
      if (r >= 0) {
        heap.push(((long) r << 32) | i);
      }
    }
    while (!heap.isEmpty()) {
      long top = heap.pop();
      int rank = (int) (top >>> 32);
      int pos = (int) top;
      if (dead[pos] || next[pos] < 0) {
        continue;
      }
      int right = next[pos];
      int r = merges.get(pairKey(sym[pos], sym[right]));
      if (r < 0 || rankNewId[r] != rankNewId[rank]) {
        continue;
      }
      sym[pos] = rankNewId[rank];
      sEnd[pos] = sEnd[right]; // right follows pos
      dead[right] = true;
      next[pos] = next[right];
      if (next[right] >= 0) {
        prev[next[right]] = pos;
      }
      if (prev[pos] >= 0) {
        int p = prev[pos];
        int pr = merges.get(pairKey(sym[p], sym[pos]));
        if (pr >= 0) {
          heap.push(((long) pr << 32) | p);
        }
      }
      if (next[pos] >= 0) {
        int nr = merges.get(pairKey(sym[pos], sym[next[pos]]));
        if (nr >= 0) {
          heap.push(((long) nr << 32) | pos);
        }
      }
    }
    int count = 0;
    for (int i = 0; i >= 0 && n > 0; i = next[i]) {
      count++;
    }
    int[] out = new int[3 * count];
    int k = 0;
    for (int i = 0; i >= 0 && n > 0; i = next[i]) {
      out[k++] = sym[i];
      out[k++] = sStart[i];
      out[k++] = sEnd[i];
    }
    return out;
  }

  private static long pairKey(int a, int b) {
    return ((long) a << 32) | (b & 0xffffffffL);
  }

  // ------------------------------------------------------------------------------------------
  // decoding internals
  // ------------------------------------------------------------------------------------------

  private static List<String> applyDecoder(DecodeOp op, List<String> tokens) {
    List<String> out = new ArrayList<>(tokens.size());
    if (op instanceof DReplace r) {
      for (String t : tokens) {
        out.add(t.replace(r.pattern, r.content));
      }
    } else if (op instanceof DFuse) {
      StringBuilder sb = new StringBuilder();
      for (String t : tokens) {
        sb.append(t);
      }
      out.add(sb.toString());
    } else if (op instanceof DStrip s) {
      for (String t : tokens) {
        out.add(strip(t, s));
      }
    } else if (op instanceof DByteFallback) {
      byte[] pending = new byte[16];
      int np = 0;
      for (String t : tokens) {
        int b = byteToken(t);
        if (b >= 0) {
          if (np == pending.length) {
            pending = Arrays.copyOf(pending, np * 2);
          }
          pending[np++] = (byte) b;
          continue;
        }
        if (np > 0) {
          flushBytes(pending, np, out);
          np = 0;
        }
        out.add(t);
      }
      if (np > 0) {
        flushBytes(pending, np, out);
      }
    }
    return out;
  }

  private static String strip(String t, DStrip s) {
    int[] chars = t.codePoints().toArray();
    int content = s.content.codePointAt(0);
    int startCut = 0;
    for (int i = 0; i < Math.min(s.start, chars.length); i++) {
      if (chars[i] == content) {
        startCut = i + 1;
      } else {
        break;
      }
    }
    int stopCut = chars.length;
    for (int i = 0; i < s.stop; i++) {
      int idx = chars.length - i - 1;
      if (idx < startCut) {
        break;
      }
      if (chars[idx] == content) {
        stopCut = idx;
      } else {
        break;
      }
    }
    return new String(chars, startCut, Math.max(0, stopCut - startCut));
  }

  /** The byte a {@code <0xNN>} token string stands for, or -1 (the decoder's byte runs). */
  static int byteToken(String t) {
    if (t.length() == 6 && t.startsWith("<0x") && t.charAt(5) == '>') {
      int hi = Character.digit(t.charAt(3), 16);
      int lo = Character.digit(t.charAt(4), 16);
      if (hi >= 0 && lo >= 0) {
        return hi * 16 + lo;
      }
    }
    return -1;
  }

  private static void flushBytes(byte[] bytes, int n, List<String> out) {
    try {
      out.add(
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(ByteBuffer.wrap(bytes, 0, n))
              .toString());
    } catch (CharacterCodingException e) {
      for (int i = 0; i < n; i++) {
        out.add("\uFFFD");
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // small primitive collections
  // ------------------------------------------------------------------------------------------

  /** A growable int array. */
  static final class IntList {
    private int[] a;
    private int n;

    IntList(int cap) {
      a = new int[Math.max(4, cap)];
    }

    void add(int v) {
      if (n == a.length) {
        a = Arrays.copyOf(a, n * 2);
      }
      a[n++] = v;
    }

    void addAll(IntList o) {
      if (n + o.n > a.length) {
        a = Arrays.copyOf(a, Math.max(n + o.n, n * 2));
      }
      System.arraycopy(o.a, 0, a, n, o.n);
      n += o.n;
    }

    int get(int i) {
      return a[i];
    }

    int size() {
      return n;
    }

    int[] toArray() {
      return Arrays.copyOf(a, n);
    }
  }

  /** A binary min-heap of longs. */
  private static final class LongHeap {
    private long[] h;
    private int n;

    LongHeap(int cap) {
      h = new long[Math.max(4, cap)];
    }

    boolean isEmpty() {
      return n == 0;
    }

    void push(long v) {
      if (n == h.length) {
        h = Arrays.copyOf(h, n * 2);
      }
      int i = n++;
      while (i > 0) {
        int p = (i - 1) >>> 1;
        if (h[p] <= v) {
          break;
        }
        h[i] = h[p];
        i = p;
      }
      h[i] = v;
    }

    long pop() {
      long top = h[0];
      long last = h[--n];
      int i = 0;
      while (true) {
        int l = 2 * i + 1;
        if (l >= n) {
          break;
        }
        int c = l + 1 < n && h[l + 1] < h[l] ? l + 1 : l;
        if (h[c] >= last) {
          break;
        }
        h[i] = h[c];
        i = c;
      }
      if (n > 0) {
        h[i] = last;
      }
      return top;
    }
  }

  /** Open-addressing map from long keys to non-negative ints; get returns -1 when absent. */
  private static final class LongIntMap {
    private final long[] keys;
    private final int[] vals;
    private final boolean[] used;
    private final int mask;

    LongIntMap(int expected) {
      int cap = Integer.highestOneBit(Math.max(4, expected * 2) - 1) << 1;
      keys = new long[cap];
      vals = new int[cap];
      used = new boolean[cap];
      mask = cap - 1;
    }

    private int slot(long k) {
      long h = k * 0x9E3779B97F4A7C15L;
      return (int) (h ^ (h >>> 29)) & mask;
    }

    void put(long k, int v) {
      int i = slot(k);
      while (used[i] && keys[i] != k) {
        i = (i + 1) & mask;
      }
      used[i] = true;
      keys[i] = k;
      vals[i] = v;
    }

    int get(long k) {
      int i = slot(k);
      while (used[i]) {
        if (keys[i] == k) {
          return vals[i];
        }
        i = (i + 1) & mask;
      }
      return -1;
    }
  }
}
