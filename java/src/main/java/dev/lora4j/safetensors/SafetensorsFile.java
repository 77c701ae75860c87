package dev.lora4j.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.io.JsonErrors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A safetensors file opened for reading: header parsed and validated, tensor data memory-mapped on
 * demand.
 *
 * <p>Layout: 8 bytes little-endian u64 {@code N}, then {@code N} bytes of UTF-8 JSON (an object
 * mapping tensor names to {@code {"dtype", "shape", "data_offsets"}}, plus an optional {@code
 * "__metadata__"} string map), then the data section. Before anything is returned, {@link #open}
 * checks: the file holds at least 8 bytes; {@code 0 < N <= 100 MB} and {@code N} fits in the file
 * (an unsigned value of 2^63 or more is rejected, not wrapped); the header is one JSON object with
 * no duplicate keys; every tensor has a known dtype, non-negative integer dimensions whose product
 * (times the element size) does not overflow, offsets {@code 0 <= begin <= end <= data size} and
 * {@code end - begin == size(dtype) * product(shape)}; tensors do not overlap. Every failure is a
 * {@link SafetensorsException} naming the file and the tensor or key.
 *
 * <p>Data is mapped read-only per tensor, so files larger than 2 GiB work; a single tensor must be
 * smaller than 2 GiB for {@link #data(String)}, larger ones are read in pieces with {@link
 * #data(String, long, int)}. Buffers handed out stay readable after {@link #close()} (the JVM
 * unmaps them when they are garbage), but no new ones are handed out.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** Largest header accepted, as the Python/Rust library: 100,000,000 bytes. */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  static final String METADATA_KEY = "__metadata__";

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private final Path path;
  private final FileChannel channel;
  private final long fileSize;
  private final long dataStart;
  private final Map<String, TensorInfo> tensors; // in data-offset order
  private final Map<String, String> metadata;
  private volatile boolean closed;

  private SafetensorsFile(
      Path path,
      FileChannel channel,
      long fileSize,
      long dataStart,
      Map<String, TensorInfo> tensors,
      Map<String, String> metadata) {
    this.path = path;
    this.channel = channel;
    this.fileSize = fileSize;
    this.dataStart = dataStart;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /**
   * Opens and validates a safetensors file.
   *
   * @param path the file
   * @return the open file; close it when done
   * @throws SafetensorsException when the file cannot be read or is not valid safetensors
   */
  public static SafetensorsFile open(Path path) {
    FileChannel ch;
    try {
      ch = FileChannel.open(path, StandardOpenOption.READ);
    } catch (IOException e) {
      throw new SafetensorsException(path + ": cannot open safetensors file: " + e, e);
    }
    try {
      return parse(path, ch);
    } catch (RuntimeException e) {
      closeQuietly(ch);
      throw e;
    } catch (IOException e) {
      closeQuietly(ch);
      throw new SafetensorsException(path + ": cannot read safetensors file: " + e, e);
    }
  }

  private static SafetensorsFile parse(Path path, FileChannel ch) throws IOException {
    long size = ch.size();
    if (size < 8) {
      throw new SafetensorsException(
          path
              + ": file is "
              + size
              + " bytes, too short for the 8-byte header length of a safetensors file");
    }
    ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, lenBuf, 0);
    long n = lenBuf.getLong(0);
    if (n <= 0 || n > MAX_HEADER_BYTES) {
      throw new SafetensorsException(
          path
              + ": header length "
              + Long.toUnsignedString(n)
              + " is out of range (must be 1 to "
              + MAX_HEADER_BYTES
              + " bytes)");
    }
    if (n > size - 8) {
      throw new SafetensorsException(
          path
              + ": header length "
              + n
              + " runs past the end of the file ("
              + size
              + " bytes); the file is truncated or corrupt");
    }
    ByteBuffer hdr = ByteBuffer.allocate((int) n);
    readFully(ch, hdr, 8);
    JsonNode root;
    try {
      root = JSON.readTree(hdr.array());
    } catch (JsonProcessingException e) {
      throw new SafetensorsException(
          path + ": header is not valid JSON: " + JsonErrors.describe(e), e);
    }
    if (root == null || !root.isObject()) {
      throw new SafetensorsException(path + ": header is not a JSON object");
    }
    long dataSize = size - 8 - n;
    Map<String, String> metadata = Map.of();
    List<TensorInfo> list = new ArrayList<>();
    Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      String key = e.getKey();
      if (METADATA_KEY.equals(key)) {
        metadata = parseMetadata(path, e.getValue());
      } else {
        list.add(parseTensor(path, key, e.getValue(), dataSize));
      }
    }
    list.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
    TensorInfo prev = null;
    for (TensorInfo t : list) {
      if (prev != null && t.begin() < prev.end()) {
        throw new SafetensorsException(
            path
                + ": tensor '"
                + t.name()
                + "' (bytes ["
                + t.begin()
                + ", "
                + t.end()
                + ")) overlaps tensor '"
                + prev.name()
                + "' (bytes ["
                + prev.begin()
                + ", "
                + prev.end()
                + "))");
      }
      if (t.end() > t.begin()) prev = t;
    }
    Map<String, TensorInfo> map = new LinkedHashMap<>();
    for (TensorInfo t : list) map.put(t.name(), t);
    return new SafetensorsFile(path, ch, size, 8 + n, Collections.unmodifiableMap(map), metadata);
  }

  private static Map<String, String> parseMetadata(Path path, JsonNode node) {
    if (node.isNull()) return Map.of();
    if (!node.isObject()) {
      throw new SafetensorsException(
          path + ": header key '" + METADATA_KEY + "' must be an object of strings");
    }
    Map<String, String> m = new LinkedHashMap<>();
    Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!e.getValue().isTextual()) {
        throw new SafetensorsException(
            path
                + ": header key '"
                + METADATA_KEY
                + "."
                + e.getKey()
                + "' must be a string, found "
                + e.getValue().getNodeType());
      }
      m.put(e.getKey(), e.getValue().textValue());
    }
    return Collections.unmodifiableMap(m);
  }

  private static TensorInfo parseTensor(Path path, String name, JsonNode node, long dataSize) {
    String where = path + ": tensor '" + name + "'";
    if (!node.isObject()) {
      throw new SafetensorsException(where + ": header entry is not a JSON object");
    }
    JsonNode dt = node.get("dtype");
    if (dt == null || !dt.isTextual()) {
      throw new SafetensorsException(where + ": 'dtype' is missing or not a string");
    }
    DType dtype =
        DType.byName(dt.textValue())
            .orElseThrow(
                () ->
                    new SafetensorsException(
                        where + ": unsupported dtype '" + dt.textValue() + "'"));
    JsonNode sh = node.get("shape");
    if (sh == null || !sh.isArray()) {
      throw new SafetensorsException(where + ": 'shape' is missing or not an array");
    }
    long[] shape = new long[sh.size()];
    long elements = 1;
    for (int i = 0; i < shape.length; i++) {
      JsonNode d = sh.get(i);
      if (!d.isIntegralNumber() || !d.canConvertToLong() || d.longValue() < 0) {
        throw new SafetensorsException(
            where + ": shape " + sh + " has a dimension that is not a non-negative integer");
      }
      shape[i] = d.longValue();
      try {
        elements = Math.multiplyExact(elements, shape[i]);
      } catch (ArithmeticException ex) {
        throw new SafetensorsException(where + ": the product of shape " + sh + " overflows");
      }
    }
    long nbytes;
    try {
      nbytes = Math.multiplyExact(elements, (long) dtype.byteSize());
    } catch (ArithmeticException ex) {
      throw new SafetensorsException(where + ": shape " + sh + " x " + dtype + " overflows");
    }
    JsonNode off = node.get("data_offsets");
    if (off == null || !off.isArray() || off.size() != 2) {
      throw new SafetensorsException(where + ": 'data_offsets' is missing or not [begin, end]");
    }
    for (JsonNode o : off) {
      if (!o.isIntegralNumber() || !o.canConvertToLong() || o.longValue() < 0) {
        throw new SafetensorsException(
            where + ": data_offsets " + off + " are not non-negative integers");
      }
    }
    long begin = off.get(0).longValue();
    long end = off.get(1).longValue();
    if (begin > end || end > dataSize) {
      throw new SafetensorsException(
          where
              + ": data_offsets ["
              + begin
              + ", "
              + end
              + "] are outside the data section of "
              + dataSize
              + " bytes"
              + (end > dataSize ? " (file truncated?)" : ""));
    }
    if (end - begin != nbytes) {
      throw new SafetensorsException(
          where
              + ": "
              + dtype
              + " x shape "
              + sh
              + " needs "
              + nbytes
              + " bytes but data_offsets ["
              + begin
              + ", "
              + end
              + "] hold "
              + (end - begin));
    }
    return new TensorInfo(name, dtype, shape, begin, end);
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      int r = ch.read(buf, pos);
      if (r < 0) throw new IOException("unexpected end of file");
      pos += r;
    }
    buf.flip();
  }

  private static void closeQuietly(FileChannel ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // nothing to do: the open failed already
    }
  }

  /**
   * @return the file this was opened from
   */
  public Path path() {
    return path;
  }

  /**
   * @return the file's size in bytes
   */
  public long fileSize() {
    return fileSize;
  }

  /**
   * @return byte offset of the data section in the file ({@code 8 + header length})
   */
  public long dataStart() {
    return dataStart;
  }

  /**
   * @return every tensor, in the order of their data in the file (unmodifiable)
   */
  public List<TensorInfo> tensors() {
    return List.copyOf(tensors.values());
  }

  /**
   * @return the tensor names, in the order of their data in the file
   */
  public List<String> names() {
    return List.copyOf(tensors.keySet());
  }

  /**
   * @param name a tensor name
   * @return whether the file holds it
   */
  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  /**
   * @param name a tensor name
   * @return its header entry
   * @throws SafetensorsException naming file and tensor when there is no such tensor
   */
  public TensorInfo tensor(String name) {
    TensorInfo t = tensors.get(name);
    if (t == null) {
      throw new SafetensorsException(path + ": no tensor named '" + name + "'");
    }
    return t;
  }

  /**
   * @return the {@code __metadata__} string map, empty when absent (unmodifiable)
   */
  public Map<String, String> metadata() {
    return metadata;
  }

  /**
   * The tensor's raw bytes, memory-mapped read-only, little-endian order set.
   *
   * @param name a tensor name
   * @return a buffer positioned at 0 whose limit is the tensor's byte length
   * @throws SafetensorsException when there is no such tensor, it is 2 GiB or larger, or mapping
   *     fails
   * @throws IllegalStateException after {@link #close()}
   */
  public ByteBuffer data(String name) {
    TensorInfo t = tensor(name);
    if (t.byteLength() > Integer.MAX_VALUE) {
      throw new SafetensorsException(
          path
              + ": tensor '"
              + name
              + "' is "
              + t.byteLength()
              + " bytes, too large for one buffer; read it in pieces with data(name, offset,"
              + " length)");
    }
    return map(t, 0, (int) t.byteLength());
  }

  /**
   * A piece of the tensor's raw bytes, memory-mapped read-only, little-endian.
   *
   * @param name a tensor name
   * @param offset first byte, relative to the tensor's start
   * @param length number of bytes
   * @return the mapped piece
   * @throws SafetensorsException when there is no such tensor or the piece is outside it
   */
  public ByteBuffer data(String name, long offset, int length) {
    TensorInfo t = tensor(name);
    if (offset < 0 || length < 0 || offset > t.byteLength() - length) {
      throw new SafetensorsException(
          path
              + ": tensor '"
              + name
              + "': bytes ["
              + offset
              + ", "
              + (offset + length)
              + ") are outside its "
              + t.byteLength()
              + " bytes");
    }
    return map(t, offset, length);
  }

  private ByteBuffer map(TensorInfo t, long offset, int length) {
    if (closed) {
      throw new IllegalStateException(path + " is closed");
    }
    if (length == 0) {
      return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
    }
    try {
      return channel
          .map(FileChannel.MapMode.READ_ONLY, dataStart + t.begin() + offset, length)
          .order(ByteOrder.LITTLE_ENDIAN);
    } catch (IOException e) {
      throw new SafetensorsException(path + ": cannot map tensor '" + t.name() + "': " + e, e);
    }
  }

  /**
   * The tensor converted to float (bf16/f16 exactly; f64 rounded; integers as {@code (float)}).
   *
   * @param name a tensor name
   * @return its elements in row-major order
   */
  public float[] readFloat(String name) {
    TensorInfo t = tensor(name);
    return t.dtype().toFloats(data(name));
  }

  /**
   * The tensor converted to double (exact for every float type).
   *
   * @param name a tensor name
   * @return its elements in row-major order
   */
  public double[] readDouble(String name) {
    TensorInfo t = tensor(name);
    return t.dtype().toDoubles(data(name));
  }

  /**
   * An integer or boolean tensor as longs.
   *
   * @param name a tensor name
   * @return its elements in row-major order
   * @throws SafetensorsException when the tensor has a floating-point dtype
   */
  public long[] readLong(String name) {
    TensorInfo t = tensor(name);
    if (t.dtype().isFloatingPoint()) {
      throw new SafetensorsException(
          path + ": tensor '" + name + "' is " + t.dtype() + ", not an integer type");
    }
    return t.dtype().toLongs(data(name));
  }

  /**
   * An integer or boolean tensor as ints.
   *
   * @param name a tensor name
   * @return its elements in row-major order
   * @throws SafetensorsException when the dtype is floating-point or a value does not fit an int
   */
  public int[] readInt(String name) {
    long[] l = readLong(name);
    int[] out = new int[l.length];
    for (int i = 0; i < l.length; i++) {
      if (l[i] != (int) l[i]) {
        throw new SafetensorsException(
            path
                + ": tensor '"
                + name
                + "' element "
                + i
                + " = "
                + l[i]
                + " does not fit in an int");
      }
      out[i] = (int) l[i];
    }
    return out;
  }

  /** Closes the file; buffers already handed out stay valid. Idempotent. */
  @Override
  public void close() {
    closed = true;
    closeQuietly(channel);
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]";
  }
}
