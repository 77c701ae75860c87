package dev.lora4j.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Collects named tensors and writes them as one safetensors file laid out as the Python
 * {@code safetensors} library lays it out: tensors sorted by dtype (descending alignment, {@link
 * DType} order) then by name; a compact JSON header with {@code __metadata__} first, padded with
 * spaces to a multiple of 8 bytes; the data back to back.
 *
 * <pre>{@code
 * new SafetensorsWriter()
 *     .add("w", DType.BF16, new long[] {4, 8}, floats)   // rounds to bf16
 *     .write(dir.resolve("model.safetensors"));          // temp file + rename
 * }</pre>
 *
 * <p>The metadata defaults to {@code {"format": "pt"}}, as {@code safetensors.torch.save_file}
 * called by transformers and PEFT writes it; {@link #metadata(Map)} with {@code null} omits it.
 * Data given as a {@link ByteBuffer} (for instance a mapped tensor of another file) is referenced,
 * not copied, until {@link #write(Path)}.
 */
public final class SafetensorsWriter {
  private static final ObjectMapper JSON = new ObjectMapper();

  private record Entry(String name, DType dtype, long[] shape, ByteBuffer data) {}

  private final Map<String, Entry> entries = new LinkedHashMap<>();
  private Map<String, String> metadata = Map.of("format", "pt");

  /** Creates an empty writer with metadata {@code {"format": "pt"}}. */
  public SafetensorsWriter() {}

  /**
   * Sets the {@code __metadata__} map.
   *
   * @param metadata string map, or {@code null} to write no {@code __metadata__} key
   * @return this
   */
  public SafetensorsWriter metadata(Map<String, String> metadata) {
    this.metadata = metadata == null ? null : new LinkedHashMap<>(metadata);
    return this;
  }

  /**
   * Adds a tensor from raw little-endian bytes.
   *
   * @param name unique tensor name (not {@code __metadata__})
   * @param dtype element type
   * @param shape dimensions
   * @param data exactly {@code dtype.byteSize() * product(shape)} bytes, from position to limit;
   *     the buffer is referenced until written, not copied
   * @return this
   * @throws SafetensorsException when the name is taken or reserved, or the sizes disagree
   */
  public SafetensorsWriter add(String name, DType dtype, long[] shape, ByteBuffer data) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    if (SafetensorsFile.METADATA_KEY.equals(name)) {
      throw new SafetensorsException("tensor name '" + name + "' is reserved");
    }
    if (entries.containsKey(name)) {
      throw new SafetensorsException("tensor '" + name + "' added twice");
    }
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new SafetensorsException("tensor '" + name + "': negative dimension in shape "
            + Arrays.toString(shape));
      }
      n = Math.multiplyExact(n, d);
    }
    long bytes = Math.multiplyExact(n, (long) dtype.byteSize());
    if (bytes != data.remaining()) {
      throw new SafetensorsException("tensor '" + name + "': " + dtype + " x shape "
          + Arrays.toString(shape) + " needs " + bytes + " bytes, got " + data.remaining());
    }
    entries.put(name, new Entry(name, dtype, shape.clone(), data.slice()));
    return this;
  }

  /**
   * Adds a tensor from raw little-endian bytes.
   *
   * @param name unique tensor name
   * @param dtype element type
   * @param shape dimensions
   * @param data exactly {@code dtype.byteSize() * product(shape)} bytes (not copied)
   * @return this
   */
  public SafetensorsWriter add(String name, DType dtype, long[] shape, byte[] data) {
    return add(name, dtype, shape, ByteBuffer.wrap(data));
  }

  /**
   * Adds a floating-point tensor, converting the values to {@code dtype} (bf16 and f16 round to
   * nearest even).
   *
   * @param name unique tensor name
   * @param dtype F32, F64, BF16 or F16
   * @param shape dimensions; their product must equal {@code values.length}
   * @param values the elements, row-major
   * @return this
   */
  public SafetensorsWriter addFloats(String name, DType dtype, long[] shape, float[] values) {
    return add(name, dtype, shape, dtype.fromFloats(values));
  }

  /**
   * Adds an integer tensor.
   *
   * @param name unique tensor name
   * @param dtype an integer type (I64 for torch's long)
   * @param shape dimensions; their product must equal {@code values.length}
   * @param values the elements, row-major
   * @return this
   */
  public SafetensorsWriter addLongs(String name, DType dtype, long[] shape, long[] values) {
    return add(name, dtype, shape, dtype.fromLongs(values));
  }

  /** @return the number of tensors added */
  public int size() {
    return entries.size();
  }

  private List<Entry> ordered() {
    List<Entry> list = new ArrayList<>(entries.values());
    list.sort(Comparator.comparing((Entry e) -> e.dtype).reversed()
        .thenComparing(e -> e.name));
    return list;
  }

  /**
   * The header as written: 8-byte little-endian length followed by the padded JSON.
   *
   * @return the bytes that precede the data
   */
  public byte[] headerBytes() {
    ObjectNode root = JSON.createObjectNode();
    if (metadata != null) {
      ObjectNode m = root.putObject(SafetensorsFile.METADATA_KEY);
      metadata.forEach(m::put);
    }
    long offset = 0;
    for (Entry e : ordered()) {
      ObjectNode t = root.putObject(e.name);
      t.put("dtype", e.dtype.name());
      ArrayNode s = t.putArray("shape");
      for (long d : e.shape) s.add(d);
      long end = offset + e.data.remaining();
      t.putArray("data_offsets").add(offset).add(end);
      offset = end;
    }
    byte[] json;
    try {
      json = JSON.writeValueAsBytes(root);
    } catch (JsonProcessingException e) {
      throw new SafetensorsException("cannot encode safetensors header: " + e.getMessage(), e);
    }
    int padded = (json.length + 7) / 8 * 8;
    ByteBuffer out = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(padded).put(json);
    while (out.hasRemaining()) out.put((byte) ' ');
    return out.array();
  }

  /**
   * The whole file in memory (for small files and tests).
   *
   * @return header and data
   */
  public byte[] toBytes() {
    byte[] header = headerBytes();
    long total = header.length;
    for (Entry e : entries.values()) total += e.data.remaining();
    ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(total));
    out.put(header);
    for (Entry e : ordered()) out.put(e.data.duplicate());
    return out.array();
  }

  /**
   * Writes the file atomically: to a temporary file in the same folder, flushed to disk, then
   * renamed over {@code target}. On failure the temporary file is removed and {@code target} is
   * left as it was.
   *
   * @param target the file to create or replace; its folder must exist
   * @throws SafetensorsException naming the file when writing fails
   */
  public void write(Path target) {
    Path abs = target.toAbsolutePath();
    Path dir = abs.getParent();
    Path tmp = null;
    try {
      // not Files.createTempFile: that makes the file owner-only (0600), and the rename would
      // keep those permissions; CREATE_NEW uses the process umask like any other new file
      Path candidate = dir.resolve("." + abs.getFileName() + "." + Long.toUnsignedString(
          java.util.concurrent.ThreadLocalRandom.current().nextLong(), 36) + ".tmp");
      FileChannel ch = FileChannel.open(candidate, StandardOpenOption.WRITE,
          StandardOpenOption.CREATE_NEW);
      tmp = candidate;
      try (ch) {
        writeFully(ch, ByteBuffer.wrap(headerBytes()));
        for (Entry e : ordered()) writeFully(ch, e.data.duplicate());
        ch.force(true);
      }
      try {
        Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
      }
      tmp = null;
    } catch (IOException | UncheckedIOException e) {
      throw new SafetensorsException(abs + ": cannot write safetensors file: " + e, e);
    } finally {
      if (tmp != null) {
        try {
          Files.deleteIfExists(tmp);
        } catch (IOException ignored) {
          // best effort: the write failed already and that is what we report
        }
      }
    }
  }

  private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) ch.write(b);
  }
}
