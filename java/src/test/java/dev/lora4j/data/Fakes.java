package dev.lora4j.data;

import dev.lora4j.Batch;
import dev.lora4j.tokenizer.ChatMessage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Byte-level fake tokenizer and chat template, and helpers shared by the data tests. */
final class Fakes {
  private Fakes() {}

  /** pad 0, bos 1, eos 2, byte b -> b + 3; literal by construction. */
  static final class ByteEncoder implements TextEncoder {
    final int vocab;
    int calls;

    ByteEncoder(int vocab) {
      this.vocab = vocab;
    }

    @Override
    public int[] encodeText(String text, boolean addBos) {
      calls++;
      byte[] b = text.getBytes(StandardCharsets.UTF_8);
      int off = addBos ? 1 : 0;
      int[] ids = new int[b.length + off];
      if (addBos) ids[0] = 1;
      for (int i = 0; i < b.length; i++) ids[i + off] = (b[i] & 0xff) + 3;
      return ids;
    }

    @Override
    public int bosId() {
      return 1;
    }

    @Override
    public int eosId() {
      return 2;
    }

    @Override
    public int padId() {
      return 0;
    }

    @Override
    public int vocabSize() {
      return vocab;
    }
  }

  static final ByteEncoder BYTES = new ByteEncoder(259);

  /** The byte encoder with a large vocabulary, for pre-tokenized data with many distinct ids. */
  static final ByteEncoder WIDE = new ByteEncoder(100_000);

  /**
   * bos, then per message the literal header "[role]" and the content; each assistant content is
   * followed by eos. With completionsOnly only assistant contents and their eos count.
   */
  static final ChatEncoder CHAT =
      (messages, completionsOnly, source) -> {
        List<Integer> ids = new ArrayList<>();
        List<Integer> labels = new ArrayList<>();
        ids.add(1);
        labels.add(completionsOnly ? -100 : 1);
        for (ChatMessage m : messages) {
          for (int id : BYTES.encodeText("[" + m.role() + "]", false)) {
            ids.add(id);
            labels.add(completionsOnly ? -100 : id);
          }
          boolean counts = !completionsOnly || m.isAssistant();
          for (int id : BYTES.encodeText(m.content(), false)) {
            ids.add(id);
            labels.add(counts ? id : -100);
          }
          if (m.isAssistant()) {
            ids.add(2);
            labels.add(2);
          }
        }
        return new TokenizedExample(
            ids.stream().mapToInt(Integer::intValue).toArray(),
            labels.stream().mapToInt(Integer::intValue).toArray(),
            source);
      };

  static int[] bytes(String s) {
    return BYTES.encodeText(s, false);
  }

  /** bos + bytes(s) + eos */
  static int[] text(String s) {
    int[] b = bytes(s);
    int[] r = new int[b.length + 2];
    r[0] = 1;
    System.arraycopy(b, 0, r, 1, b.length);
    r[r.length - 1] = 2;
    return r;
  }

  static int[] ignore(int n) {
    int[] r = new int[n];
    Arrays.fill(r, -100);
    return r;
  }

  static int[] concat(int[]... parts) {
    int n = 0;
    for (int[] p : parts) n += p.length;
    int[] r = new int[n];
    int at = 0;
    for (int[] p : parts) {
      System.arraycopy(p, 0, r, at, p.length);
      at += p.length;
    }
    return r;
  }

  static Path write(Path dir, String name, String... lines) {
    try {
      Path f = dir.resolve(name);
      Files.write(f, List.of(lines), StandardCharsets.UTF_8);
      return f;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static JsonlDataset open(Path file, DataConfig config) {
    return JsonlDataset.open(file, BYTES, CHAT, config);
  }

  static DataConfig.Builder cfg() {
    return DataConfig.builder().shuffleBuffer(0).prefetch(false);
  }

  static List<TokenizedExample> readAll(JsonlDataset ds) {
    List<TokenizedExample> out = new ArrayList<>();
    try (ExampleStream s = ds.examplesInFileOrder(null)) {
      s.forEachRemaining(out::add);
    }
    return out;
  }

  static List<TokenizedExample> readEpoch(JsonlDataset ds, int epoch) {
    List<TokenizedExample> out = new ArrayList<>();
    try (ExampleStream s = ds.examples(epoch, null)) {
      s.forEachRemaining(out::add);
    }
    return out;
  }

  static List<DataBatch> allBatches(JsonlDataset ds, DataPosition start, int epochs) {
    List<DataBatch> out = new ArrayList<>();
    try (BatchIterator it = ds.batches(start, epochs)) {
      it.forEachRemaining(out::add);
    }
    return out;
  }

  static String describe(Batch b) {
    return b.rows()
        + "x"
        + b.seq()
        + " ids="
        + Arrays.toString(b.inputIds())
        + " mask="
        + Arrays.toString(b.attentionMask())
        + " labels="
        + Arrays.toString(b.labels())
        + " pos="
        + Arrays.toString(b.positionIds())
        + " seg="
        + Arrays.toString(b.segmentIds());
  }

  /** Equal content (Batch is a record of arrays, whose equals compares references). */
  static String describe(DataBatch b) {
    return describe(b.batch())
        + " tokens="
        + b.labelTokens()
        + " examples="
        + b.examples()
        + " epoch="
        + b.epoch()
        + " next="
        + b.next();
  }
}
