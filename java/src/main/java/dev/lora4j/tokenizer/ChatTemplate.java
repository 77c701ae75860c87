package dev.lora4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Lora4jException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face chat template ({@code chat_template} of {@code tokenizer_config.json}), rendered
 * the way {@code transformers}' {@code apply_chat_template} renders it, but keeping track of which
 * text the template wrote and which came from a message.
 *
 * <h2>Control tokens come only from the template</h2>
 *
 * {@code apply_chat_template(..., tokenize=True)} renders the conversation to one string and
 * tokenizes it with special tokens parsed, so a user who writes {@code </s>} or {@code [INST]} in a
 * message forges control tokens. {@link #encode} gives the same ids as Hugging Face for every
 * conversation whose messages contain no special-token text, and keeps message text literal
 * otherwise: special-token strings are parsed only where every character was written by the
 * template. The rendered string is otherwise tokenized as Hugging Face does, piece by piece between
 * control tokens, with template text and message text of one piece tokenized together (tokenizing
 * them separately would add a SentencePiece "▁" at every boundary and merge differently).
 *
 * <h2>The template engine</h2>
 *
 * Templates run on lora4j's own small Jinja2 interpreter (package-private), not on a Java Jinja
 * library from Maven Central. The reasons: (1) it tracks, for every character of the output,
 * whether it came from the template or from a message, through concatenation, {@code trim},
 * slicing, {@code replace} and the rest, which is what makes the split between control text and
 * literal text exact rather than a sentinel-string heuristic that breaks when a template transforms
 * the content; (2) Python semantics where chat templates rely on them ({@code +} on strings, {@code
 * str.strip()}, {@code split}, {@code startswith}, {@code items()}, truthiness, {@code tojson}) and
 * the environment {@code transformers} uses ({@code trim_blocks}, {@code lstrip_blocks}, loop
 * controls, {@code raise_exception}, {@code namespace}, {@code strftime_now}); (3) no dependency:
 * Jinjava, the usual choice, brings Guava and a dozen other jars and has Java (JUEL) rather than
 * Python expression semantics. An unsupported construct is a {@link ChatTemplateException} naming
 * it, never a silent difference.
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class ChatTemplate {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String source;
  private final Jinja compiled;
  private final Map<String, String> specialTokens;

  private ChatTemplate(String source, Map<String, String> specialTokens) {
    this.source = source;
    String src = source;
    // Jinja2's default keep_trailing_newline=False drops one trailing newline of the source
    if (src.endsWith("\r\n")) {
      src = src.substring(0, src.length() - 2);
    } else if (src.endsWith("\n")) {
      src = src.substring(0, src.length() - 1);
    }
    this.compiled = Jinja.compile(src);
    this.specialTokens = Map.copyOf(specialTokens);
  }

  /**
   * Compiles a template.
   *
   * @param source the Jinja source
   * @param bosToken the value of {@code bos_token} (null: undefined)
   * @param eosToken the value of {@code eos_token} (null: undefined)
   * @return the template
   * @throws ChatTemplateException when the source does not parse
   */
  public static ChatTemplate of(String source, String bosToken, String eosToken) {
    Map<String, String> special = new LinkedHashMap<>();
    if (bosToken != null) {
      special.put("bos_token", bosToken);
    }
    if (eosToken != null) {
      special.put("eos_token", eosToken);
    }
    return new ChatTemplate(source, special);
  }

  /**
   * Loads the {@code chat_template} of a {@code tokenizer_config.json}: a string, or a list of
   * named templates of which the one named {@code "default"} is taken. {@code bos_token}, {@code
   * eos_token}, {@code unk_token}, {@code pad_token} of the file become template variables.
   *
   * @param tokenizerConfigJson path of {@code tokenizer_config.json}
   * @return the template
   * @throws Lora4jException when the file cannot be read or has no chat template
   */
  public static ChatTemplate fromTokenizerConfig(Path tokenizerConfigJson) {
    JsonNode config = readConfig(tokenizerConfigJson);
    JsonNode t = config.path("chat_template");
    String source = null;
    if (t.isTextual()) {
      source = t.asText();
    } else if (t.isArray()) {
      for (JsonNode named : t) {
        if ("default".equals(named.path("name").asText())) {
          source = named.path("template").asText();
        }
      }
      if (source == null) {
        throw new Lora4jException(
            tokenizerConfigJson + ": chat_template has no template named 'default'");
      }
    }
    if (source == null) {
      throw new Lora4jException(tokenizerConfigJson + " has no chat_template");
    }
    try {
      return new ChatTemplate(source, specialTokens(config));
    } catch (ChatTemplateException e) {
      throw new ChatTemplateException(tokenizerConfigJson + ": chat_template: " + e.getMessage());
    }
  }

  /**
   * Loads the chat template of a Hugging Face model folder: {@code chat_template.jinja} when the
   * folder has one (as {@code transformers} saves it since 4.43), else the {@code chat_template} of
   * {@code tokenizer_config.json}.
   *
   * @param dir the model folder
   * @return the template
   * @throws Lora4jException when the folder has no chat template
   */
  public static ChatTemplate fromModelDir(Path dir) {
    Path jinja = dir.resolve("chat_template.jinja");
    Path config = dir.resolve("tokenizer_config.json");
    if (Files.isRegularFile(jinja)) {
      try {
        String src = Files.readString(jinja, StandardCharsets.UTF_8);
        Map<String, String> special =
            Files.isRegularFile(config) ? specialTokens(readConfig(config)) : Map.of();
        try {
          return new ChatTemplate(src, special);
        } catch (ChatTemplateException e) {
          throw new ChatTemplateException(jinja + ": " + e.getMessage());
        }
      } catch (IOException e) {
        throw new Lora4jException("cannot read " + jinja + ": " + e.getMessage(), e);
      }
    }
    if (!Files.isRegularFile(config)) {
      throw new Lora4jException("no chat_template.jinja or tokenizer_config.json in " + dir);
    }
    return fromTokenizerConfig(config);
  }

  /**
   * Whether a model folder has a chat template: chat_template.jinja, or a chat_template that is not
   * null in tokenizer_config.json (a base model, Mistral-7B-v0.1's among them, has none).
   *
   * @throws Lora4jException when tokenizer_config.json cannot be read
   */
  public static boolean present(Path dir) {
    if (Files.isRegularFile(dir.resolve("chat_template.jinja"))) return true;
    Path config = dir.resolve("tokenizer_config.json");
    if (!Files.isRegularFile(config)) return false;
    JsonNode t = readConfig(config).path("chat_template");
    return !t.isMissingNode() && !t.isNull();
  }

  private static JsonNode readConfig(Path path) {
    try {
      return JSON.readTree(path.toFile());
    } catch (IOException e) {
      throw new Lora4jException("cannot read " + path + ": " + e.getMessage(), e);
    }
  }

  private static Map<String, String> specialTokens(JsonNode config) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String name : List.of("bos_token", "eos_token", "unk_token", "pad_token")) {
      JsonNode n = config.path(name);
      if (n.isTextual()) {
        out.put(name, n.asText());
      } else if (n.isObject() && n.path("content").isTextual()) {
        out.put(name, n.path("content").asText());
      }
    }
    return out;
  }

  /**
   * @return the Jinja source of the template
   */
  public String source() {
    return source;
  }

  /**
   * Renders a conversation into segments of template text and message text.
   *
   * @param messages the conversation
   * @param addGenerationPrompt the template's {@code add_generation_prompt}: end with the prompt of
   *     an assistant reply
   * @return the segments, in order; adjacent segments never have the same origin
   * @throws ChatTemplateException when the template rejects the conversation (its {@code
   *     raise_exception} message) or fails
   */
  public List<Segment> render(List<ChatMessage> messages, boolean addGenerationPrompt) {
    Str out = renderStr(messages, addGenerationPrompt);
    List<Segment> segments = new ArrayList<>();
    for (int k = 0, start = 0; k < out.runCount(); start = out.runEnd(k), k++) {
      segments.add(segment(out.s.substring(start, out.runEnd(k)), out.runOwner(k), messages));
    }
    return segments;
  }

  /**
   * @param messages the conversation
   * @param addGenerationPrompt see {@link #render}
   * @return the rendered string, what {@code apply_chat_template(..., tokenize=False)} returns
   */
  public String renderString(List<ChatMessage> messages, boolean addGenerationPrompt) {
    return renderStr(messages, addGenerationPrompt).s;
  }

  private static Segment segment(String text, int owner, List<ChatMessage> messages) {
    if (owner == Str.TEMPLATE) {
      return new Segment(Segment.Kind.TEMPLATE, text, -1, null);
    }
    if (owner >= 0) {
      return new Segment(Segment.Kind.CONTENT, text, owner, messages.get(owner).role());
    }
    int m = -2 - owner;
    return new Segment(Segment.Kind.MESSAGE_FIELD, text, m, messages.get(m).role());
  }

  private Str renderStr(List<ChatMessage> messages, boolean addGenerationPrompt) {
    Map<String, Object> vars = new LinkedHashMap<>();
    List<Object> msgs = new ArrayList<>();
    for (int i = 0; i < messages.size(); i++) {
      ChatMessage m = messages.get(i);
      Map<String, Object> map = new LinkedHashMap<>();
      map.put("role", Str.owned(m.role(), Str.fieldOwner(i)));
      map.put("content", Str.owned(m.content(), i));
      msgs.add(map);
    }
    vars.put("messages", msgs);
    vars.put("add_generation_prompt", addGenerationPrompt);
    vars.put("tools", null);
    vars.put("documents", null);
    specialTokens.forEach((k, v) -> vars.put(k, Str.of(v)));
    return compiled.render(vars);
  }

  /**
   * Renders and tokenizes a conversation for training or generation. No BOS is added beyond what
   * the template writes (as {@code apply_chat_template} tokenizes with {@code
   * add_special_tokens=False}).
   *
   * @param messages the conversation
   * @param addGenerationPrompt see {@link #render}
   * @param tokenizer the model's tokenizer
   * @return ids with, per token, the message it came from and the assistant training mask
   * @throws ChatTemplateException when the template rejects the conversation
   */
  public EncodedChat encode(
      List<ChatMessage> messages, boolean addGenerationPrompt, Tokenizer tokenizer) {
    Str out = renderStr(messages, addGenerationPrompt);
    Tokenizer.IntList ids = new Tokenizer.IntList(out.length() / 3 + 4);
    Tokenizer.IntList starts = new Tokenizer.IntList(out.length() / 3 + 4);
    Tokenizer.IntList ends = new Tokenizer.IntList(out.length() / 3 + 4);
    tokenizer.encodeParsingAddedTokens(out.s, 0, out.length(), ids, starts, ends, out);
    int n = ids.size();
    int[] message = new int[n];
    boolean[] content = new boolean[n];
    boolean[] train = new boolean[n];
    int eos = tokenizer.eosId();
    int lastMessage = -1;
    for (int t = 0; t < n; t++) {
      int s = starts.get(t);
      int e = ends.get(t);
      int owner = e > s ? out.dataOwner(s, e) : s < out.length() ? out.ownerAt(s) : Str.TEMPLATE;
      if (owner >= 0) {
        message[t] = owner;
        content[t] = true;
        train[t] = messages.get(owner).role().equals("assistant");
        lastMessage = owner;
      } else if (owner != Str.TEMPLATE) {
        message[t] = -2 - owner;
        lastMessage = message[t];
      } else if (ids.get(t) == eos
          && lastMessage >= 0
          && messages.get(lastMessage).role().equals("assistant")) {
        message[t] = lastMessage;
        train[t] = true;
        lastMessage = -1;
      } else if (ids.get(t) == eos
          && lastMessage >= 0
          && lastMessage + 1 < messages.size()
          && messages.get(lastMessage + 1).role().equals("assistant")
          && blank(messages.get(lastMessage + 1).content())) {
        // an empty assistant turn (or one of whitespace that the template trims away) leaves no
        // token of its own: the eos after the message before it closes that turn, and counts as
        // every assistant turn's closing eos does
        message[t] = lastMessage + 1;
        train[t] = true;
        lastMessage = -1;
      } else {
        message[t] = -1;
      }
    }
    return new EncodedChat(ids.toArray(), message, content, train, messages);
  }

  /** Empty, or only the whitespace that Jinja's trim removes. */
  private static boolean blank(String s) {
    for (int i = 0; i < s.length(); i++) if (!Str.isPySpace(s.charAt(i))) return false;
    return true;
  }
}
