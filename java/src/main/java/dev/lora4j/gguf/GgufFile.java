package dev.lora4j.gguf;

import dev.lora4j.Lora4jException;
import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a GGUF file (versions 2 and 3): its metadata and tensor infos, and the data of the tensors
 * of the types lora4j knows ({@link GgmlType}). Everything is checked against the file before use
 * (counts and lengths against the bytes left, tensor data inside the file), so a damaged file is a
 * {@link Lora4jException} naming it, never an out-of-memory or a wrong read.
 *
 * <p>Metadata values are returned as Java values: integers as {@code Long} (unsigned 64-bit values
 * above {@code Long.MAX_VALUE} wrap), floats as {@code Double}, booleans, strings, and arrays as
 * {@code List}.
 */
public final class GgufFile implements AutoCloseable {
  /**
   * One tensor's info.
   *
   * @param name its name
   * @param typeId ggml type id
   * @param ne dimensions, innermost first
   * @param offset offset of its data from the start of the data section
   */
  public record TensorInfo(String name, int typeId, long[] ne, long offset) {
    /**
     * @return the type, or null for a ggml type lora4j does not read
     */
    public GgmlType type() {
      return GgmlType.byId(typeId);
    }

    /**
     * @return the number of elements
     */
    public long elements() {
      long n = 1;
      for (long d : ne) n *= d;
      return n;
    }
  }

  private final Path path;
  private final FileChannel channel;
  private final int version;
  private final Map<String, Object> metadata;
  private final Map<String, TensorInfo> tensors;
  private final long dataStart;

  private GgufFile(
      Path path,
      FileChannel channel,
      int version,
      Map<String, Object> metadata,
      Map<String, TensorInfo> tensors,
      long dataStart) {
    this.path = path;
    this.channel = channel;
    this.version = version;
    this.metadata = metadata;
    this.tensors = tensors;
    this.dataStart = dataStart;
  }

  /**
   * Opens and checks a GGUF file.
   *
   * @throws Lora4jException when it cannot be read or is not a valid GGUF file
   */
  public static GgufFile open(Path path) {
    FileChannel ch;
    try {
      ch = FileChannel.open(path, StandardOpenOption.READ);
    } catch (IOException e) {
      throw new Lora4jException("cannot read " + path + ": " + e, e);
    }
    try {
      long size = ch.size();
      // The header lies at the start; read up to 64 MiB of it (a 32000-token vocabulary is ~1 MiB,
      // a 256k one about 8 MiB), then check every length against the real file size.
      int headLen = (int) Math.min(size, 64L << 20);
      ByteBuffer b = ByteBuffer.allocate(headLen).order(ByteOrder.LITTLE_ENDIAN);
      while (b.hasRemaining() && ch.read(b) >= 0) {
        // fill
      }
      b.flip();
      Reader r = new Reader(path, b);
      byte[] magic = new byte[4];
      r.need(4, "the magic");
      b.get(magic);
      if (!new String(magic, StandardCharsets.ISO_8859_1).equals("GGUF")) {
        throw new Lora4jException(path + " is not a GGUF file (it does not start with 'GGUF')");
      }
      int version = r.u32("the version");
      if (version != 2 && version != 3) {
        throw new Lora4jException(
            path + ": GGUF version " + version + " is not supported (2 or 3)");
      }
      long nTensors = r.count("the tensor count", 8 + 4 + 4 + 8 + 8);
      long nKv = r.count("the metadata count", 8 + 4);
      Map<String, Object> meta = new LinkedHashMap<>();
      for (long i = 0; i < nKv; i++) {
        String key = r.string("metadata key " + i);
        int type = r.u32("the type of " + key);
        if (meta.put(key, r.value(type, key, 0)) != null) {
          throw new Lora4jException(path + ": metadata key " + key + " appears twice");
        }
      }
      Map<String, TensorInfo> infos = new LinkedHashMap<>();
      for (long i = 0; i < nTensors; i++) {
        String name = r.string("tensor name " + i);
        int nd = r.u32("the dimensions of " + name);
        if (nd < 1 || nd > 4)
          throw new Lora4jException(path + ": tensor " + name + " has " + nd + " dimensions");
        long[] ne = new long[nd];
        for (int d = 0; d < nd; d++) {
          ne[d] = r.u64("a dimension of " + name);
          if (ne[d] < 0)
            throw new Lora4jException(path + ": tensor " + name + " has a negative dimension");
        }
        int type = r.u32("the type of " + name);
        long off = r.u64("the offset of " + name);
        if (infos.put(name, new TensorInfo(name, type, ne, off)) != null) {
          throw new Lora4jException(path + ": tensor " + name + " appears twice");
        }
      }
      long alignment = 32;
      Object a = meta.get("general.alignment");
      if (a instanceof Long l) {
        if (l <= 0 || Long.bitCount(l) != 1)
          throw new Lora4jException(path + ": general.alignment " + l + " is not a power of two");
        alignment = l;
      }
      long dataStart = (b.position() + alignment - 1) / alignment * alignment;
      GgufFile f =
          new GgufFile(
              path,
              ch,
              version,
              Collections.unmodifiableMap(meta),
              Collections.unmodifiableMap(infos),
              dataStart);
      for (TensorInfo t : infos.values()) {
        GgmlType gt = t.type();
        if (gt == null) continue;
        long n = 1;
        for (long d : t.ne) n = Math.multiplyExact(n, d);
        long end = dataStart + t.offset + gt.bytes(n);
        if (t.offset % alignment != 0 || end > size || end < dataStart) {
          throw new Lora4jException(
              path
                  + ": the data of tensor "
                  + t.name
                  + " lies outside the file"
                  + " or is not aligned (the file may be cut short)");
        }
      }
      return f;
    } catch (Lora4jException | ArithmeticException | IllegalArgumentException | IOException e) {
      try {
        ch.close();
      } catch (IOException ignored) {
        // reporting the first failure
      }
      if (e instanceof Lora4jException le) throw le;
      throw new Lora4jException(path + " is not a valid GGUF file: " + e.getMessage(), e);
    }
  }

  /** Bounded little-endian reads of the header. */
  private static final class Reader {
    final Path path;
    final ByteBuffer b;

    Reader(Path path, ByteBuffer b) {
      this.path = path;
      this.b = b;
    }

    void need(long n, String what) {
      if (n < 0 || n > b.remaining()) {
        throw new Lora4jException(
            path + ": the file ends inside " + what + " (cut short, or not GGUF)");
      }
    }

    int u32(String what) {
      need(4, what);
      return b.getInt();
    }

    long u64(String what) {
      need(8, what);
      return b.getLong();
    }

    /** A count whose every item needs at least minBytes: bounded by the bytes left. */
    long count(String what, long minBytes) {
      long n = u64(what);
      if (n < 0 || n > b.remaining() / minBytes) {
        throw new Lora4jException(path + ": " + what + " " + n + " is more than the file can hold");
      }
      return n;
    }

    String string(String what) {
      long n = u64(what);
      need(n, what);
      byte[] s = new byte[(int) n];
      b.get(s);
      try {
        return StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(s))
            .toString();
      } catch (CharacterCodingException e) {
        throw new Lora4jException(path + ": " + what + " is not UTF-8");
      }
    }

    Object value(int type, String key, int depth) {
      GgufWriter.ValueType[] types = GgufWriter.ValueType.values();
      if (type < 0 || type >= types.length) {
        throw new Lora4jException(path + ": metadata " + key + " has unknown value type " + type);
      }
      try {
        return switch (types[type]) {
          case UINT8 -> (long) (b.get() & 0xFF);
          case INT8 -> (long) b.get();
          case UINT16 -> (long) (b.getShort() & 0xFFFF);
          case INT16 -> (long) b.getShort();
          case UINT32 -> b.getInt() & 0xFFFFFFFFL;
          case INT32 -> (long) b.getInt();
          case FLOAT32 -> (double) b.getFloat();
          case BOOL -> b.get() != 0;
          case STRING -> string("metadata " + key);
          case UINT64, INT64 -> b.getLong();
          case FLOAT64 -> b.getDouble();
          case ARRAY -> {
            if (depth > 4)
              throw new Lora4jException(path + ": metadata " + key + " nests arrays too deep");
            int et = u32("the element type of " + key);
            long n = count("the length of " + key, 1);
            List<Object> out = new ArrayList<>((int) Math.min(n, 1 << 20));
            for (long i = 0; i < n; i++) out.add(value(et, key, depth + 1));
            yield Collections.unmodifiableList(out);
          }
        };
      } catch (BufferUnderflowException e) {
        throw new Lora4jException(path + ": the file ends inside metadata " + key);
      }
    }
  }

  public Path path() {
    return path;
  }

  public int version() {
    return version;
  }

  /**
   * @return every metadata key and value, in file order
   */
  public Map<String, Object> metadata() {
    return metadata;
  }

  /**
   * @return the value of a metadata key, or null
   */
  public Object get(String key) {
    return metadata.get(key);
  }

  /**
   * @return a string value, or null when absent or not a string
   */
  public String string(String key) {
    return metadata.get(key) instanceof String s ? s : null;
  }

  /**
   * @return an integer value, or null when absent or not an integer
   */
  public Long integer(String key) {
    return metadata.get(key) instanceof Long l ? l : null;
  }

  /**
   * @return the tensor infos by name, in file order
   */
  public Map<String, TensorInfo> tensors() {
    return tensors;
  }

  /**
   * Reads a tensor's values as floats (dequantized for Q8_0).
   *
   * @throws Lora4jException when absent or of a type lora4j does not read
   */
  public float[] readFloats(String name) {
    TensorInfo t = tensors.get(name);
    if (t == null) throw new Lora4jException(path + " has no tensor " + name);
    GgmlType type = t.type();
    if (type == null)
      throw new Lora4jException(
          path
              + ": tensor "
              + name
              + " has ggml type "
              + t.typeId
              + ", which lora4j does not read");
    long bytes = type.bytes(t.elements());
    try {
      MappedByteBuffer m = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + t.offset, bytes);
      return type.decode(m);
    } catch (IOException e) {
      throw new Lora4jException("cannot read tensor " + name + " of " + path + ": " + e, e);
    }
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException ignored) {
      // nothing was written
    }
  }

  @Override
  public String toString() {
    return "GgufFile["
        + path
        + ", v"
        + version
        + ", "
        + metadata.size()
        + " keys, "
        + tensors.size()
        + " tensors]";
  }
}
