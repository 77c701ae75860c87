package dev.lora4j.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lora4j.Lora4jException;
import dev.lora4j.io.OutputFile;
import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.tokenizer.ChatTemplate;
import dev.lora4j.tokenizer.ChatTemplateException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An Ollama Modelfile for a GGUF export: {@code FROM} the model file, {@code ADAPTER} the LoRA
 * adapter file when there is one, {@code TEMPLATE} in Ollama's Go template language made from the
 * model's Hugging Face chat template, and {@code PARAMETER stop} lines (the EOS token and the start
 * of a user turn).
 *
 * <p>The Go template is derived, not hand-written: the Jinja template is rendered with marker
 * messages, the text around each message is cut out (the text that opens and closes a user turn, an
 * assistant turn, a system message, the generation prompt), and the pieces are checked by
 * rebuilding the Jinja output of conversations of one to five turns, with and without the
 * generation prompt. A template whose output does not decompose so (one that moves the system
 * message into the last user turn, say) gets no TEMPLATE line and a comment saying why; system
 * messages are left out when only they do not decompose. The BOS token that the template writes
 * first is left out, since llama.cpp adds it when it tokenizes (add_bos_token).
 */
public final class OllamaModelfile {
  private static final String U1 = "lora4jUserOne", U2 = "lora4jUserTwo", U3 = "lora4jUserThree";
  private static final String A1 = "lora4jAssistantOne", A2 = "lora4jAssistantTwo";
  private static final String S1 = "lora4jSystemOne";

  private OllamaModelfile() {}

  /**
   * The pieces of a chat template: a conversation renders as {@code start}, then per message {@code
   * pre + content + post} of its role, then {@code generationPrompt} after a final user message.
   *
   * @param start text before the first message (BOS left out)
   * @param userPre text before a user message
   * @param userPost text after a user message
   * @param assistantPre text before an assistant message
   * @param assistantPost text after an assistant message
   * @param systemPre text before a system message, or null when system messages are not handled
   * @param systemPost text after a system message, or null
   * @param generationPrompt what add_generation_prompt adds after a final user message
   */
  public record Pieces(
      String start,
      String userPre,
      String userPost,
      String assistantPre,
      String assistantPost,
      String systemPre,
      String systemPost,
      String generationPrompt) {

    /** The conversation as these pieces render it (the last assistant message closed). */
    String render(List<ChatMessage> conv, boolean generationPrompt) {
      StringBuilder sb = new StringBuilder(start);
      for (ChatMessage m : conv) {
        switch (m.role()) {
          case "user" -> sb.append(userPre).append(m.content()).append(userPost);
          case "assistant" -> sb.append(assistantPre).append(m.content()).append(assistantPost);
          case "system" -> sb.append(systemPre).append(m.content()).append(systemPost);
          default -> throw new IllegalArgumentException(m.role());
        }
      }
      if (generationPrompt && conv.get(conv.size() - 1).role().equals("user"))
        sb.append(this.generationPrompt);
      return sb.toString();
    }

    /**
     * @return the Go template: the pieces as literal text around Ollama's {@code .Messages}; a
     *     final assistant message is left open (Ollama continues it)
     */
    public String goTemplate() {
      StringBuilder t = new StringBuilder();
      t.append(lit(start));
      t.append("{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}");
      if (systemPre != null) {
        t.append("{{ if eq $m.Role \"system\" }}")
            .append(lit(systemPre))
            .append("{{ $m.Content }}")
            .append(lit(systemPost))
            .append("{{ else if eq $m.Role \"user\" }}");
      } else {
        t.append("{{ if eq $m.Role \"user\" }}");
      }
      t.append(lit(userPre)).append("{{ $m.Content }}").append(lit(userPost));
      if (!generationPrompt.isEmpty())
        t.append("{{ if $last }}").append(lit(generationPrompt)).append("{{ end }}");
      t.append("{{ else if eq $m.Role \"assistant\" }}")
          .append(lit(assistantPre))
          .append("{{ $m.Content }}");
      if (!assistantPost.isEmpty())
        t.append("{{ if not $last }}").append(lit(assistantPost)).append("{{ end }}");
      t.append("{{ end }}{{ end }}");
      return t.toString();
    }
  }

  /**
   * Cuts a chat template into {@link Pieces}.
   *
   * @param template the chat template
   * @param bosToken the BOS token's text, or null
   * @param addBos whether the tokenizer adds BOS (then a leading BOS of the template is left out)
   * @return the pieces
   * @throws Lora4jException saying why the template does not decompose
   */
  public static Pieces derive(ChatTemplate template, String bosToken, boolean addBos) {
    List<ChatMessage> four =
        List.of(
            ChatMessage.user(U1),
            ChatMessage.assistant(A1),
            ChatMessage.user(U2),
            ChatMessage.assistant(A2));
    String r4 = render(template, four, false);
    int[] at = positions(r4, U1, A1, U2, A2);
    String t0 = r4.substring(0, at[0]);
    String t1 = r4.substring(at[0] + U1.length(), at[1]);
    String t2 = r4.substring(at[1] + A1.length(), at[2]);
    String t3 = r4.substring(at[2] + U2.length(), at[3]);
    String t4 = r4.substring(at[3] + A2.length());
    if (!t1.equals(t3))
      throw new Lora4jException(
          "the text between a user and an assistant message differs from turn to turn");
    String ru = render(template, List.of(ChatMessage.user(U1)), false);
    String rg = render(template, List.of(ChatMessage.user(U1)), true);
    if (!ru.startsWith(t0 + U1) || !rg.startsWith(t0 + U1)) {
      throw new Lora4jException("a one-message conversation does not start like a longer one");
    }
    String userPost = ru.substring(t0.length() + U1.length());
    String genTail = rg.substring(t0.length() + U1.length());
    if (!t1.startsWith(userPost) || !genTail.startsWith(userPost)) {
      throw new Lora4jException("the end of a user turn depends on what follows it");
    }
    String assistantPre = t1.substring(userPost.length());
    String generationPrompt = genTail.substring(userPost.length());
    String assistantPost = t4;
    if (!t2.startsWith(assistantPost))
      throw new Lora4jException("the end of an assistant turn depends on what follows it");
    String userPre = t2.substring(assistantPost.length());
    if (!t0.endsWith(userPre))
      throw new Lora4jException("the first user turn opens differently from the later ones");
    String start = t0.substring(0, t0.length() - userPre.length());
    Pieces p =
        new Pieces(
            start, userPre, userPost, assistantPre, assistantPost, null, null, generationPrompt);
    List<List<ChatMessage>> convs =
        List.of(
            List.of(ChatMessage.user(U1)),
            List.of(ChatMessage.user(U1), ChatMessage.assistant(A1)),
            List.of(ChatMessage.user(U1), ChatMessage.assistant(A1), ChatMessage.user(U2)),
            four,
            List.of(
                ChatMessage.user(U1),
                ChatMessage.assistant(A1),
                ChatMessage.user(U2),
                ChatMessage.assistant(A2),
                ChatMessage.user(U3)));
    verify(template, p, convs);
    p = withSystem(template, p);
    if (addBos && bosToken != null && !bosToken.isEmpty() && p.start.startsWith(bosToken)) {
      p =
          new Pieces(
              p.start.substring(bosToken.length()),
              p.userPre,
              p.userPost,
              p.assistantPre,
              p.assistantPost,
              p.systemPre,
              p.systemPost,
              p.generationPrompt);
    }
    return p;
  }

  /**
   * The pieces with system messages when the template's system turn decomposes, else as they are.
   */
  private static Pieces withSystem(ChatTemplate template, Pieces p) {
    List<ChatMessage> conv =
        List.of(
            ChatMessage.system(S1),
            ChatMessage.user(U1),
            ChatMessage.assistant(A1),
            ChatMessage.user(U2));
    String rs;
    try {
      rs = template.renderString(conv, false);
    } catch (ChatTemplateException e) {
      return p;
    }
    int s = rs.indexOf(S1);
    int u = rs.indexOf(U1);
    if (s < 0 || u < s || !rs.startsWith(p.start) || s < p.start.length()) return p;
    String before = rs.substring(p.start.length(), s);
    String after = rs.substring(s + S1.length(), u);
    if (!after.endsWith(p.userPre)) return p;
    Pieces q =
        new Pieces(
            p.start,
            p.userPre,
            p.userPost,
            p.assistantPre,
            p.assistantPost,
            before,
            after.substring(0, after.length() - p.userPre.length()),
            p.generationPrompt);
    try {
      verify(template, q, List.of(List.of(ChatMessage.system(S1), ChatMessage.user(U1)), conv));
    } catch (Lora4jException e) {
      return p;
    }
    return q;
  }

  private static void verify(ChatTemplate template, Pieces p, List<List<ChatMessage>> convs) {
    for (List<ChatMessage> c : convs) {
      for (boolean gen : new boolean[] {false, true}) {
        if (gen && !c.get(c.size() - 1).role().equals("user")) continue;
        String want = render(template, c, gen);
        String got = p.render(c, gen);
        if (!want.equals(got)) {
          throw new Lora4jException(
              "a conversation of "
                  + c.size()
                  + " messages"
                  + (gen ? " with the generation prompt" : "")
                  + " renders as "
                  + quote(want)
                  + ", the turn pieces give "
                  + quote(got));
        }
      }
    }
  }

  private static String render(ChatTemplate t, List<ChatMessage> conv, boolean gen) {
    try {
      return t.renderString(conv, gen);
    } catch (ChatTemplateException e) {
      throw new Lora4jException(
          "the template rejects a plain user/assistant conversation: " + e.getMessage(), e);
    }
  }

  private static int[] positions(String s, String... parts) {
    int[] at = new int[parts.length];
    int from = 0;
    for (int i = 0; i < parts.length; i++) {
      at[i] = s.indexOf(parts[i], from);
      if (at[i] < 0 || s.indexOf(parts[i], at[i] + 1) >= 0) {
        throw new Lora4jException(
            "the template does not write each message's content once, in order");
      }
      from = at[i] + parts[i].length();
    }
    return at;
  }

  private static String quote(String s) {
    return "\"" + s.replace("\n", "\\n") + "\"";
  }

  /** Literal text in a Go template: as is, or as a quoted string action when it holds braces. */
  static String lit(String s) {
    if (s.isEmpty()) return "";
    if (!s.contains("{{") && !s.contains("}}") && !s.contains("\"") && !s.contains("\r")) {
      return s;
    }
    StringBuilder b = new StringBuilder("{{ \"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) b.append(String.format("\\x%02x", (int) c));
          else b.append(c);
        }
      }
    }
    return b.append("\" }}").toString();
  }

  /**
   * The text of a Modelfile.
   *
   * @param dir the folder the Modelfile is written to (FROM and ADAPTER are relative to it when
   *     they lie inside it)
   * @param model the model GGUF
   * @param adapter the adapter GGUF, or null
   * @param modelDir the Hugging Face model folder (chat template and tokenizer settings)
   * @param notes receives what the user should know (a template that does not decompose)
   * @return the Modelfile
   */
  public static String text(Path dir, Path model, Path adapter, Path modelDir, List<String> notes) {
    StringBuilder m = new StringBuilder();
    m.append("# Ollama Modelfile written by lora4j from ")
        .append(modelDir.toAbsolutePath().normalize());
    m.append("\n# use: ollama create NAME -f ").append("<this file>").append("\n");
    m.append("FROM ").append(ref(dir, model)).append('\n');
    if (adapter != null) m.append("ADAPTER ").append(ref(dir, adapter)).append('\n');
    JsonNode tc = GgufExport.readTokenizerConfig(modelDir);
    String bos = tc == null ? null : tokenText(tc.path("bos_token"));
    String eos = tc == null ? null : tokenText(tc.path("eos_token"));
    Set<String> stops = new LinkedHashSet<>();
    if (eos != null && !eos.isEmpty()) stops.add(eos);
    String source = GgufExport.chatTemplateSource(modelDir);
    if (source == null) {
      m.append("# TEMPLATE: not written: ").append(modelDir).append(" has no chat template\n");
      notes.add("the Modelfile has no TEMPLATE: " + modelDir + " has no chat template");
    } else {
      try {
        Pieces p = derive(ChatTemplate.fromModelDir(modelDir), bos, GgufExport.addBos(tc));
        m.append("TEMPLATE \"\"\"").append(p.goTemplate()).append("\"\"\"\n");
        if (source.contains("strftime_now")) {
          // the template prints the day it renders (a default system prompt's date, say): the
          // TEMPLATE holds the export's
          String say =
              "the chat template calls strftime_now (the current date or time), which the"
                  + " Modelfile's TEMPLATE holds as rendered at the export ("
                  + java.time.LocalDate.now()
                  + "): edit the TEMPLATE where it should change";
          m.append("# ").append(say).append('\n');
          notes.add(say);
        }
        if (p.systemPre == null) {
          m.append(
              "# system messages are left out: the chat template has no separate system turn\n");
        }
        String userOpen = p.userPre.strip();
        if (bos != null && userOpen.startsWith(bos))
          userOpen = userOpen.substring(bos.length()).strip();
        if (!userOpen.isEmpty()) stops.add(userOpen);
      } catch (Lora4jException e) {
        m.append("# TEMPLATE: not written: the chat template does not split into turns (")
            .append(e.getMessage().replace('\n', ' '))
            .append(
                "); write one by hand (Ollama may"
                    + " recognize the GGUF's tokenizer.chat_template by itself)\n");
        notes.add(
            "the Modelfile has no TEMPLATE: the chat template does not split into turns: "
                + e.getMessage());
      }
    }
    for (String s : stops) {
      if (s.contains("\"\"\"")) continue;
      boolean plain = !s.contains("\"") && !s.contains("\n");
      m.append("PARAMETER stop ")
          .append(plain ? "\"" + s + "\"" : "\"\"\"" + s + "\"\"\"")
          .append('\n');
    }
    return m.toString();
  }

  private static String tokenText(JsonNode n) {
    if (n.isTextual()) return n.asText();
    if (n.isObject() && n.path("content").isTextual()) return n.path("content").asText();
    return null;
  }

  private static String ref(Path dir, Path file) {
    Path d = dir.toAbsolutePath().normalize(), f = file.toAbsolutePath().normalize();
    if (f.startsWith(d)) return "./" + d.relativize(f).toString().replace('\\', '/');
    return f.toString();
  }

  /**
   * Writes a Modelfile (under a temporary name, then renamed).
   *
   * @param modelfile the file to write; refused when it exists unless overwrite, and refused even
   *     then when it is one of the GGUF files it names, or the model folder, or an existing file
   *     inside it (writing there could destroy an input)
   * @param model the model GGUF (FROM)
   * @param adapter the adapter GGUF (ADAPTER), or null
   * @param modelDir the Hugging Face model folder
   * @param overwrite whether an existing file may be replaced
   * @return notes for the user (empty when the Modelfile is complete)
   * @throws Lora4jException naming the paths when the Modelfile would overwrite an input
   */
  public static List<String> write(
      Path modelfile, Path model, Path adapter, Path modelDir, boolean overwrite) {
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("model GGUF", model);
    inputs.put("adapter GGUF", adapter);
    inputs.put("model folder", modelDir);
    OutputFile.checkApart(modelfile, "Modelfile", inputs);
    List<String> notes = new ArrayList<>();
    Path dir = modelfile.toAbsolutePath().normalize().getParent();
    String text = text(dir, model, adapter, modelDir, notes);
    try (OutputFile out = OutputFile.stage(modelfile, overwrite)) {
      Files.writeString(out.path(), text, StandardCharsets.UTF_8);
      out.commit();
    } catch (IOException e) {
      throw new Lora4jException("cannot write " + modelfile + ": " + e, e);
    }
    return notes;
  }

  /**
   * @return the Modelfile path beside a GGUF file: {@code NAME.gguf} gives {@code NAME.Modelfile}
   */
  public static Path besides(Path gguf) {
    String n = gguf.getFileName().toString();
    String stem =
        n.toLowerCase(java.util.Locale.ROOT).endsWith(".gguf") ? n.substring(0, n.length() - 5) : n;
    return gguf.resolveSibling(stem + ".Modelfile");
  }
}
