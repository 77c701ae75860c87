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
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Collects named tensors and writes them as one safetensors file laid out as the Python {@code
 * safetensors} library lays it out: tensors sorted by dtype (descending alignment, {@link DType}
 * order) then by name; a compact JSON header with {@code __metadata__} first, padded with spaces to
 * a multiple of 8 bytes; the data back to back.
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
 *
 * <p>A tensor too large to hold, or cheaper to compute in parallel, is added as a {@link
 * ChunkSource}: its bytes are produced chunk by chunk while the file is written, by {@link
 * #threads(int)} threads that each fill a chunk into their own buffer and write it at its place in
 * the file. Memory stays at one chunk per thread whatever the size of the file.
 */
public final class SafetensorsWriter {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The bytes of a tensor, produced a chunk at a time while the file is written. Chunks are
   * numbered from 0; each is {@code chunkBytes} long except the last, which holds the rest.
   */
  @FunctionalInterface
  public interface ChunkSource {
    /**
     * Puts chunk {@code index} into {@code out}: exactly {@code out.remaining()} bytes,
     * little-endian, from its position on. May be called from any of the writer's threads, and for
     * the chunks of one tensor in any order and concurrently.
     *
     * @param index the chunk number, from 0
     * @param out a little-endian buffer with room for exactly this chunk
     */
    void fill(long index, ByteBuffer out);
  }

  /** Data is either {@code data} (referenced bytes) or {@code source} in chunks of chunkBytes. */
  private record Entry(
      String name,
      DType dtype,
      long[] shape,
      long bytes,
      ByteBuffer data,
      int chunkBytes,
      ChunkSource source) {
    long chunks() {
      return data != null ? 1 : (bytes + chunkBytes - 1) / chunkBytes;
    }
  }

  private final Map<String, Entry> entries = new LinkedHashMap<>();
  private Map<String, String> metadata = Map.of("format", "pt");
  private int threads = 1;

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
    long bytes = checkNew(name, dtype, shape);
    if (bytes != data.remaining()) {
      throw new SafetensorsException(
          "tensor '"
              + name
              + "': "
              + dtype
              + " x shape "
              + Arrays.toString(shape)
              + " needs "
              + bytes
              + " bytes, got "
              + data.remaining());
    }
    entries.put(name, new Entry(name, dtype, shape.clone(), bytes, data.slice(), 0, null));
    return this;
  }

  /**
   * Adds a tensor whose bytes {@code source} produces while the file is written.
   *
   * @param name unique tensor name (not {@code __metadata__})
   * @param dtype element type
   * @param shape dimensions
   * @param chunkBytes the size of every chunk but the last, a positive multiple of the element size
   * @param source fills the chunks; called during {@link #write(Path)} and {@link #toBytes()}
   * @return this
   * @throws SafetensorsException when the name is taken or reserved, or the chunk size is not a
   *     positive multiple of the element size
   */
  public SafetensorsWriter add(
      String name, DType dtype, long[] shape, int chunkBytes, ChunkSource source) {
    Objects.requireNonNull(source, "source");
    long bytes = checkNew(name, dtype, shape);
    if (chunkBytes <= 0 || chunkBytes % dtype.byteSize() != 0) {
      throw new SafetensorsException(
          "tensor '"
              + name
              + "': chunk size "
              + chunkBytes
              + " is not a positive multiple of the "
              + dtype
              + " element size");
    }
    entries.put(name, new Entry(name, dtype, shape.clone(), bytes, null, chunkBytes, source));
    return this;
  }

  /** The byte size of a new tensor; throws when the name or the shape is not acceptable. */
  private long checkNew(String name, DType dtype, long[] shape) {
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
        throw new SafetensorsException(
            "tensor '" + name + "': negative dimension in shape " + Arrays.toString(shape));
      }
      n = Math.multiplyExact(n, d);
    }
    return Math.multiplyExact(n, (long) dtype.byteSize());
  }

  /**
   * Sets how many threads {@link #write(Path)} uses to produce and write the data (default 1). The
   * file is the same whatever the number.
   *
   * @param threads at least 1
   * @return this
   */
  public SafetensorsWriter threads(int threads) {
    if (threads < 1)
      throw new IllegalArgumentException("threads must be at least 1, got " + threads);
    this.threads = threads;
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

  /**
   * @return the number of tensors added
   */
  public int size() {
    return entries.size();
  }

  private List<Entry> ordered() {
    List<Entry> list = new ArrayList<>(entries.values());
    list.sort(Comparator.comparing((Entry e) -> e.dtype).reversed().thenComparing(e -> e.name));
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
      long end = offset + e.bytes;
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
    for (Entry e : entries.values()) total += e.bytes;
    ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(total)).order(ByteOrder.LITTLE_ENDIAN);
    out.put(header);
    for (Entry e : ordered()) {
      if (e.data != null) {
        out.put(e.data.duplicate());
        continue;
      }
      for (long c = 0; c < e.chunks(); c++) {
        int len = chunkLength(e, c);
        ByteBuffer piece = out.slice(out.position(), len).order(ByteOrder.LITTLE_ENDIAN);
        fillChunk(e, c, piece);
        out.position(out.position() + len);
      }
    }
    return out.array();
  }

  private static int chunkLength(Entry e, long chunk) {
    return (int) Math.min(e.chunkBytes, e.bytes - chunk * e.chunkBytes);
  }

  private static void fillChunk(Entry e, long chunk, ByteBuffer out) {
    int len = out.remaining();
    e.source.fill(chunk, out);
    if (out.position() != len) {
      throw new SafetensorsException(
          "tensor '"
              + e.name
              + "': chunk "
              + chunk
              + " of "
              + len
              + " bytes was filled with "
              + out.position());
    }
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
      Path candidate =
          dir.resolve(
              "."
                  + abs.getFileName()
                  + "."
                  + Long.toUnsignedString(
                      java.util.concurrent.ThreadLocalRandom.current().nextLong(), 36)
                  + ".tmp");
      FileChannel ch =
          FileChannel.open(candidate, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW);
      tmp = candidate;
      try (ch) {
        byte[] header = headerBytes();
        writeFully(ch, ByteBuffer.wrap(header), 0);
        writeData(ch, header.length);
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

  /** One piece of the data: a chunk of a tensor (or all of a tensor given as bytes). */
  private record Piece(Entry entry, long chunk, long fileOffset) {}

  /**
   * Writes every tensor's data after the header: the pieces are taken in file order by {@code
   * threads} workers, each filling its own buffer and writing it at the piece's offset, so the file
   * does not depend on which worker took which piece.
   */
  private void writeData(FileChannel ch, long start) throws IOException {
    List<Piece> pieces = new ArrayList<>();
    int maxChunk = 0;
    long offset = start;
    for (Entry e : ordered()) {
      for (long c = 0; c < e.chunks(); c++) {
        pieces.add(new Piece(e, c, offset + c * e.chunkBytes));
      }
      if (e.source != null) maxChunk = (int) Math.max(maxChunk, Math.min(e.chunkBytes, e.bytes));
      offset += e.bytes;
    }
    int workers = Math.min(threads, pieces.size());
    AtomicInteger next = new AtomicInteger();
    List<PieceWriter> writers = new ArrayList<>();
    if (workers <= 1) {
      PieceWriter pw = new PieceWriter(ch, pieces, next, maxChunk);
      pw.run();
      rethrow(pw.failure);
      return;
    }
    List<Thread> running = new ArrayList<>();
    for (int i = 0; i < workers; i++) {
      PieceWriter pw = new PieceWriter(ch, pieces, next, maxChunk);
      Thread t = new Thread(pw, "safetensors-writer-" + i);
      t.setDaemon(true);
      writers.add(pw);
      running.add(t);
      t.start();
    }
    boolean interrupted = false;
    for (Thread t : running) {
      while (true) {
        try {
          t.join();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
          next.set(pieces.size()); // the workers stop after their current piece
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while writing");
    }
    for (PieceWriter pw : writers) rethrow(pw.failure);
  }

  private static void rethrow(Throwable failure) throws IOException {
    if (failure == null) return;
    if (failure instanceof IOException io) throw io;
    if (failure instanceof RuntimeException re) throw re;
    if (failure instanceof Error err) throw err;
    throw new IOException(failure);
  }

  /** Takes pieces from a shared counter until none is left or one fails. */
  private static final class PieceWriter implements Runnable {
    private final FileChannel ch;
    private final List<Piece> pieces;
    private final AtomicInteger next;
    private final int bufferBytes;
    Throwable failure;

    PieceWriter(FileChannel ch, List<Piece> pieces, AtomicInteger next, int bufferBytes) {
      this.ch = ch;
      this.pieces = pieces;
      this.next = next;
      this.bufferBytes = bufferBytes;
    }

    @Override
    public void run() {
      ByteBuffer buf =
          bufferBytes == 0
              ? null
              : ByteBuffer.allocateDirect(bufferBytes).order(ByteOrder.LITTLE_ENDIAN);
      try {
        for (int i = next.getAndIncrement(); i < pieces.size(); i = next.getAndIncrement()) {
          Piece p = pieces.get(i);
          Entry e = p.entry;
          if (e.data != null) {
            writeFully(ch, e.data.duplicate(), p.fileOffset);
            continue;
          }
          buf.clear().limit(chunkLength(e, p.chunk));
          fillChunk(e, p.chunk, buf);
          writeFully(ch, buf.flip(), p.fileOffset);
        }
      } catch (IOException | RuntimeException | Error e) {
        failure = e;
        next.set(pieces.size()); // the other workers stop after their current piece
      }
    }
  }

  private static void writeFully(FileChannel ch, ByteBuffer b, long position) throws IOException {
    long p = position;
    while (b.hasRemaining()) p += ch.write(b, p);
  }
}
