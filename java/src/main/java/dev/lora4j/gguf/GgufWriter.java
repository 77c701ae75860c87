package dev.lora4j.gguf;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Writes a GGUF version 3 file: the magic {@code "GGUF"}, version, tensor and key counts, the
 * metadata key/value pairs (typed), the tensor infos (name, dimensions innermost first, ggml type,
 * offset), padding to the alignment (32 bytes), then each tensor's data at its aligned offset. All
 * numbers little-endian, strings as a u64 byte length and UTF-8 bytes.
 *
 * <p>Tensor data is produced by a supplier when the data section is written, one tensor at a time,
 * so a 7B model is never held in memory whole.
 */
public final class GgufWriter {
  /** GGUF format version written. */
  public static final int VERSION = 3;

  /** Alignment of the data section and of every tensor in it. */
  public static final int ALIGNMENT = 32;

  /** GGUF metadata value types. */
  enum ValueType {
    UINT8,
    INT8,
    UINT16,
    INT16,
    UINT32,
    INT32,
    FLOAT32,
    BOOL,
    STRING,
    ARRAY,
    UINT64,
    INT64,
    FLOAT64
  }

  private record Value(ValueType type, ValueType elementType, Object value) {}

  private record Tensor(
      String name, GgmlType type, long[] ne, long bytes, Supplier<byte[][]> data) {}

  private final Map<String, Value> metadata = new LinkedHashMap<>();
  private final List<Tensor> tensors = new ArrayList<>();

  public GgufWriter putString(String key, String v) {
    return put(key, new Value(ValueType.STRING, null, v));
  }

  public GgufWriter putU32(String key, long v) {
    if (v < 0 || v > 0xFFFFFFFFL)
      throw new IllegalArgumentException(key + " = " + v + " does not fit in u32");
    return put(key, new Value(ValueType.UINT32, null, v));
  }

  public GgufWriter putF32(String key, double v) {
    return put(key, new Value(ValueType.FLOAT32, null, (float) v));
  }

  public GgufWriter putBool(String key, boolean v) {
    return put(key, new Value(ValueType.BOOL, null, v));
  }

  public GgufWriter putStrings(String key, List<String> v) {
    return put(key, new Value(ValueType.ARRAY, ValueType.STRING, List.copyOf(v)));
  }

  public GgufWriter putF32s(String key, float[] v) {
    return put(key, new Value(ValueType.ARRAY, ValueType.FLOAT32, v.clone()));
  }

  public GgufWriter putI32s(String key, int[] v) {
    return put(key, new Value(ValueType.ARRAY, ValueType.INT32, v.clone()));
  }

  private GgufWriter put(String key, Value v) {
    if (metadata.containsKey(key))
      throw new IllegalArgumentException("metadata key " + key + " set twice");
    metadata.put(key, v);
    return this;
  }

  /**
   * Adds a tensor.
   *
   * @param name the GGUF tensor name ({@code blk.0.attn_q.weight})
   * @param type its ggml type
   * @param ne dimensions, innermost (contiguous) first: a Hugging Face {@code [out, in]} weight is
   *     {@code {in, out}}
   * @param data produces the tensor's bytes when the file is written; must return exactly {@code
   *     type.bytes(product of ne)} bytes
   */
  public GgufWriter tensor(String name, GgmlType type, long[] ne, Supplier<byte[]> data) {
    return tensorParts(name, type, ne, () -> new byte[][] {data.get()});
  }

  /**
   * Adds a tensor whose bytes come in parts (written one after the other): for tensors of more than
   * 2 GiB, which fit no single array ({@link GgmlType#encodeParts}).
   */
  public GgufWriter tensorParts(String name, GgmlType type, long[] ne, Supplier<byte[][]> data) {
    long n = 1;
    for (long d : ne) n = Math.multiplyExact(n, d);
    if (!type.fitsRow(ne[0])) {
      throw new IllegalArgumentException(
          name + ": rows of " + ne[0] + " cannot be stored as " + type);
    }
    for (Tensor t : tensors) {
      if (t.name.equals(name))
        throw new IllegalArgumentException("tensor " + name + " added twice");
    }
    tensors.add(new Tensor(name, type, ne.clone(), type.bytes(n), data));
    return this;
  }

  /** Writes the file (the caller stages it under a temporary name). */
  public void write(Path file) throws IOException {
    ByteBuffer head = header();
    try (FileChannel ch =
        FileChannel.open(
            file,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      writeFully(ch, head);
      long pos = head.limit();
      for (Tensor t : tensors) {
        byte[][] parts = t.data.get();
        long produced = 0;
        for (byte[] part : parts) produced += part.length;
        if (produced != t.bytes) {
          throw new IllegalStateException(
              t.name + ": " + produced + " bytes produced, " + t.bytes + " expected");
        }
        for (byte[] part : parts) writeFully(ch, ByteBuffer.wrap(part));
        pos += produced;
        long pad = padding(pos);
        if (pad > 0) {
          writeFully(ch, ByteBuffer.allocate((int) pad));
          pos += pad;
        }
      }
      ch.force(true);
    }
  }

  private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) ch.write(b);
  }

  private static long padding(long pos) {
    return (ALIGNMENT - pos % ALIGNMENT) % ALIGNMENT;
  }

  /** Everything before the data section, padded to the alignment. */
  private ByteBuffer header() {
    Out o = new Out();
    o.bytes("GGUF".getBytes(StandardCharsets.US_ASCII));
    o.u32(VERSION);
    o.u64(tensors.size());
    o.u64(metadata.size());
    for (Map.Entry<String, Value> e : metadata.entrySet()) {
      o.string(e.getKey());
      Value v = e.getValue();
      o.u32(v.type.ordinal());
      if (v.type == ValueType.ARRAY) {
        o.u32(v.elementType.ordinal());
        switch (v.elementType) {
          case STRING -> {
            @SuppressWarnings("unchecked")
            List<String> l = (List<String>) v.value;
            o.u64(l.size());
            for (String s : l) o.string(s);
          }
          case FLOAT32 -> {
            float[] a = (float[]) v.value;
            o.u64(a.length);
            for (float f : a) o.f32(f);
          }
          case INT32 -> {
            int[] a = (int[]) v.value;
            o.u64(a.length);
            for (int i : a) o.u32(i);
          }
          default -> throw new IllegalStateException("array of " + v.elementType);
        }
      } else {
        switch (v.type) {
          case STRING -> o.string((String) v.value);
          case UINT32 -> o.u32((int) (long) (Long) v.value);
          case FLOAT32 -> o.f32((Float) v.value);
          case BOOL -> o.u8((Boolean) v.value ? 1 : 0);
          default -> throw new IllegalStateException("value of " + v.type);
        }
      }
    }
    long offset = 0;
    for (Tensor t : tensors) {
      o.string(t.name);
      o.u32(t.ne.length);
      for (long d : t.ne) o.u64(d);
      o.u32(t.type.id());
      o.u64(offset);
      offset += t.bytes;
      offset += padding(offset);
    }
    o.pad();
    return o.done();
  }

  /** A growable little-endian byte buffer. */
  private static final class Out {
    private ByteBuffer b = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

    private void room(int n) {
      if (b.remaining() >= n) return;
      int cap = Math.max(b.capacity() * 2, b.position() + n);
      ByteBuffer nb = ByteBuffer.allocate(cap).order(ByteOrder.LITTLE_ENDIAN);
      b.flip();
      nb.put(b);
      b = nb;
    }

    void bytes(byte[] a) {
      room(a.length);
      b.put(a);
    }

    void u8(int v) {
      room(1);
      b.put((byte) v);
    }

    void u32(int v) {
      room(4);
      b.putInt(v);
    }

    void u64(long v) {
      room(8);
      b.putLong(v);
    }

    void f32(float v) {
      room(4);
      b.putFloat(v);
    }

    void string(String s) {
      byte[] a = s.getBytes(StandardCharsets.UTF_8);
      u64(a.length);
      bytes(a);
    }

    void pad() {
      int n = (int) padding(b.position());
      room(n);
      b.put(new byte[n]);
    }

    ByteBuffer done() {
      b.flip();
      return b;
    }
  }

  @Override
  public String toString() {
    return "GgufWriter["
        + metadata.size()
        + " keys, "
        + tensors.size()
        + " tensors: "
        + Arrays.toString(tensors.stream().map(Tensor::name).limit(4).toArray())
        + "...]";
  }
}
