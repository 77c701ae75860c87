package dev.lora4j.resilience;

import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.AccessMode;
import java.nio.file.CopyOption;
import java.nio.file.DirectoryStream;
import java.nio.file.FileStore;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.ProviderMismatchException;
import java.nio.file.StandardOpenOption;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.FileAttributeView;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.nio.file.spi.FileSystemProvider;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A disk that fills up, without root: a {@link FileSystem} over the default one in which the
 * regular files under one folder may hold at most {@code capacity} bytes together. Everything
 * happens on the real files; only writes are checked. A write that does not fit writes what fits
 * and the next one fails with {@code IOException("No space left on device")}, as a write(2) on a
 * full disk does. Deleting files frees their space. Paths print as the real paths.
 *
 * <pre>{@code
 * Path out = SmallDisk.mount(tmp.resolve("disk"), 100_000);   // a Path of the small disk
 * Files.writeString(out.resolve("a"), "...");                   // counted against 100 kB
 * }</pre>
 */
final class SmallDisk extends FileSystem {
  static final String FULL = "No space left on device";

  private final Provider provider = new Provider();
  private final FileSystem real = FileSystems.getDefault();
  private final Path root;
  private final long capacity;

  private SmallDisk(Path root, long capacity) {
    this.root = root;
    this.capacity = capacity;
  }

  /**
   * Creates {@code dir} when missing and returns it as a path of a small disk.
   *
   * @param dir a folder of the default file system; its files count against the capacity
   * @param capacity bytes the files under {@code dir} may hold together
   * @return {@code dir} on the small disk
   */
  static Path mount(Path dir, long capacity) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    Files.createDirectories(abs);
    return new SmallDisk(abs, capacity).wrap(abs);
  }

  /** Bytes held by the regular files under the folder. */
  long used() throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      long n = 0;
      for (Path p : s.toList()) {
        if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) n += Files.size(p);
      }
      return n;
    }
  }

  /**
   * How many of {@code n} bytes written at {@code position} of a file now {@code size} long fit,
   * counting the growth of the file against the free space.
   */
  private long fits(long position, long n, long size) throws IOException {
    long growth = Math.max(0, position + n - size);
    long free = Math.max(0, capacity - used());
    return growth <= free ? n : Math.max(0, n - (growth - free));
  }

  Path wrap(Path p) {
    return p == null ? null : new DiskPath(this, p);
  }

  static Path unwrap(Path p) {
    if (p == null) return null;
    if (!(p instanceof DiskPath d))
      throw new ProviderMismatchException("not a small-disk path: " + p);
    return d.real;
  }

  @Override
  public FileSystemProvider provider() {
    return provider;
  }

  @Override
  public void close() {}

  @Override
  public boolean isOpen() {
    return true;
  }

  @Override
  public boolean isReadOnly() {
    return false;
  }

  @Override
  public String getSeparator() {
    return real.getSeparator();
  }

  @Override
  public Iterable<Path> getRootDirectories() {
    List<Path> out = new ArrayList<>();
    for (Path p : real.getRootDirectories()) out.add(wrap(p));
    return out;
  }

  @Override
  public Iterable<FileStore> getFileStores() {
    return real.getFileStores();
  }

  @Override
  public Set<String> supportedFileAttributeViews() {
    return real.supportedFileAttributeViews();
  }

  @Override
  public Path getPath(String first, String... more) {
    return wrap(real.getPath(first, more));
  }

  @Override
  public PathMatcher getPathMatcher(String syntaxAndPattern) {
    PathMatcher m = real.getPathMatcher(syntaxAndPattern);
    return p -> m.matches(unwrap(p));
  }

  @Override
  public UserPrincipalLookupService getUserPrincipalLookupService() {
    return real.getUserPrincipalLookupService();
  }

  @Override
  public WatchService newWatchService() {
    throw new UnsupportedOperationException("no watch service on the small disk");
  }

  /** A real path seen through the small disk. */
  private static final class DiskPath implements Path {
    final SmallDisk fs;
    final Path real;

    DiskPath(SmallDisk fs, Path real) {
      this.fs = fs;
      this.real = real;
    }

    @Override
    public FileSystem getFileSystem() {
      return fs;
    }

    @Override
    public boolean isAbsolute() {
      return real.isAbsolute();
    }

    @Override
    public Path getRoot() {
      return fs.wrap(real.getRoot());
    }

    @Override
    public Path getFileName() {
      return fs.wrap(real.getFileName());
    }

    @Override
    public Path getParent() {
      return fs.wrap(real.getParent());
    }

    @Override
    public int getNameCount() {
      return real.getNameCount();
    }

    @Override
    public Path getName(int index) {
      return fs.wrap(real.getName(index));
    }

    @Override
    public Path subpath(int beginIndex, int endIndex) {
      return fs.wrap(real.subpath(beginIndex, endIndex));
    }

    @Override
    public boolean startsWith(Path other) {
      return other instanceof DiskPath d && real.startsWith(d.real);
    }

    @Override
    public boolean endsWith(Path other) {
      return other instanceof DiskPath d && real.endsWith(d.real);
    }

    @Override
    public Path normalize() {
      return fs.wrap(real.normalize());
    }

    @Override
    public Path resolve(Path other) {
      return fs.wrap(real.resolve(unwrap(other)));
    }

    @Override
    public Path relativize(Path other) {
      return fs.wrap(real.relativize(unwrap(other)));
    }

    @Override
    public URI toUri() {
      return URI.create("smalldisk:" + real.toUri().getRawPath());
    }

    @Override
    public Path toAbsolutePath() {
      return fs.wrap(real.toAbsolutePath());
    }

    @Override
    public Path toRealPath(LinkOption... options) throws IOException {
      return fs.wrap(real.toRealPath(options));
    }

    @Override
    public WatchKey register(
        WatchService watcher, WatchEvent.Kind<?>[] events, WatchEvent.Modifier... modifiers) {
      throw new UnsupportedOperationException("no watch service on the small disk");
    }

    @Override
    public int compareTo(Path other) {
      return real.compareTo(unwrap(other));
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof DiskPath d && d.fs == fs && d.real.equals(real);
    }

    @Override
    public int hashCode() {
      return real.hashCode();
    }

    @Override
    public String toString() {
      return real.toString();
    }
  }

  /** Every operation on the real path; writing channels check the capacity. */
  private final class Provider extends FileSystemProvider {
    @Override
    public String getScheme() {
      return "smalldisk";
    }

    @Override
    public FileSystem newFileSystem(URI uri, Map<String, ?> env) {
      throw new UnsupportedOperationException("use SmallDisk.mount");
    }

    @Override
    public FileSystem getFileSystem(URI uri) {
      throw new UnsupportedOperationException("use SmallDisk.mount");
    }

    @Override
    public Path getPath(URI uri) {
      throw new UnsupportedOperationException("use SmallDisk.mount");
    }

    @Override
    public SeekableByteChannel newByteChannel(
        Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs)
        throws IOException {
      return newFileChannel(path, options, attrs);
    }

    @Override
    public FileChannel newFileChannel(
        Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs)
        throws IOException {
      FileChannel ch = FileChannel.open(unwrap(path), options, attrs);
      boolean writes =
          options.contains(StandardOpenOption.WRITE) || options.contains(StandardOpenOption.APPEND);
      return writes ? new LimitedChannel(ch, options.contains(StandardOpenOption.APPEND)) : ch;
    }

    @Override
    public DirectoryStream<Path> newDirectoryStream(
        Path dir, DirectoryStream.Filter<? super Path> filter) throws IOException {
      DirectoryStream<Path> ds = Files.newDirectoryStream(unwrap(dir), p -> filter.accept(wrap(p)));
      return new DirectoryStream<>() {
        @Override
        public Iterator<Path> iterator() {
          Iterator<Path> it = ds.iterator();
          return new Iterator<>() {
            @Override
            public boolean hasNext() {
              return it.hasNext();
            }

            @Override
            public Path next() {
              return wrap(it.next());
            }
          };
        }

        @Override
        public void close() throws IOException {
          ds.close();
        }
      };
    }

    @Override
    public void createDirectory(Path dir, FileAttribute<?>... attrs) throws IOException {
      Files.createDirectory(unwrap(dir), attrs);
    }

    @Override
    public void delete(Path path) throws IOException {
      Files.delete(unwrap(path));
    }

    @Override
    public void copy(Path source, Path target, CopyOption... options) throws IOException {
      Path src = unwrap(source);
      synchronized (SmallDisk.this) {
        long n = Files.isRegularFile(src) ? Files.size(src) : 0;
        Path dst = unwrap(target);
        long replaced = Files.isRegularFile(dst) ? Files.size(dst) : 0;
        if (fits(0, n, replaced) < n) throw new IOException(FULL);
        Files.copy(src, dst, options);
      }
    }

    @Override
    public void move(Path source, Path target, CopyOption... options) throws IOException {
      Files.move(unwrap(source), unwrap(target), options);
    }

    @Override
    public boolean isSameFile(Path path, Path path2) throws IOException {
      return Files.isSameFile(unwrap(path), unwrap(path2));
    }

    @Override
    public boolean isHidden(Path path) throws IOException {
      return Files.isHidden(unwrap(path));
    }

    @Override
    public FileStore getFileStore(Path path) throws IOException {
      return Files.getFileStore(unwrap(path));
    }

    @Override
    public void checkAccess(Path path, AccessMode... modes) throws IOException {
      Path p = unwrap(path);
      p.getFileSystem().provider().checkAccess(p, modes);
    }

    @Override
    public <V extends FileAttributeView> V getFileAttributeView(
        Path path, Class<V> type, LinkOption... options) {
      return Files.getFileAttributeView(unwrap(path), type, options);
    }

    @Override
    public <A extends BasicFileAttributes> A readAttributes(
        Path path, Class<A> type, LinkOption... options) throws IOException {
      return Files.readAttributes(unwrap(path), type, options);
    }

    @Override
    public Map<String, Object> readAttributes(Path path, String attributes, LinkOption... options)
        throws IOException {
      return Files.readAttributes(unwrap(path), attributes, options);
    }

    @Override
    public void setAttribute(Path path, String attribute, Object value, LinkOption... options)
        throws IOException {
      Files.setAttribute(unwrap(path), attribute, value, options);
    }
  }

  /** A real file channel whose writes stop when the disk is full. */
  private final class LimitedChannel extends FileChannel {
    private final FileChannel ch;
    private final boolean append;

    LimitedChannel(FileChannel ch, boolean append) {
      this.ch = ch;
      this.append = append;
    }

    /** Writes what fits of src at position (or at the end when -1), else fails as a full disk. */
    private int put(ByteBuffer src, long position) throws IOException {
      synchronized (SmallDisk.this) {
        long size = ch.size();
        long at = position >= 0 ? position : append ? size : ch.position();
        int n = (int) fits(at, src.remaining(), size);
        if (n == 0 && src.hasRemaining()) throw new IOException(FULL);
        ByteBuffer part = src.duplicate();
        part.limit(part.position() + n);
        int written = position >= 0 ? ch.write(part, position) : ch.write(part);
        src.position(src.position() + written);
        return written;
      }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      return put(src, -1);
    }

    @Override
    public int write(ByteBuffer src, long position) throws IOException {
      if (position < 0) throw new IllegalArgumentException("negative position");
      return put(src, position);
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
      long total = 0;
      for (int i = offset; i < offset + length; i++) {
        int want = srcs[i].remaining();
        int n;
        try {
          n = want > 0 ? write(srcs[i]) : 0;
        } catch (IOException e) {
          if (total > 0) return total; // what was written is reported; the next call fails
          throw e;
        }
        total += n;
        if (n < want) break;
      }
      return total;
    }

    @Override
    public long transferFrom(ReadableByteChannel src, long position, long count)
        throws IOException {
      ByteBuffer buf = ByteBuffer.allocate((int) Math.min(count, 1 << 16));
      long done = 0;
      while (done < count) {
        buf.clear().limit((int) Math.min(buf.capacity(), count - done));
        if (src.read(buf) <= 0) break;
        buf.flip();
        while (buf.hasRemaining()) done += write(buf, position + done);
      }
      return done;
    }

    @Override
    public MappedByteBuffer map(MapMode mode, long position, long size) throws IOException {
      if (mode != MapMode.READ_ONLY) {
        synchronized (SmallDisk.this) {
          if (fits(position, size, ch.size()) < size) throw new IOException(FULL);
        }
      }
      return ch.map(mode, position, size);
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      return ch.read(dst);
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
      return ch.read(dsts, offset, length);
    }

    @Override
    public int read(ByteBuffer dst, long position) throws IOException {
      return ch.read(dst, position);
    }

    @Override
    public long position() throws IOException {
      return ch.position();
    }

    @Override
    public FileChannel position(long newPosition) throws IOException {
      ch.position(newPosition);
      return this;
    }

    @Override
    public long size() throws IOException {
      return ch.size();
    }

    @Override
    public FileChannel truncate(long size) throws IOException {
      ch.truncate(size);
      return this;
    }

    @Override
    public void force(boolean metaData) throws IOException {
      ch.force(metaData);
    }

    @Override
    public long transferTo(long position, long count, WritableByteChannel target)
        throws IOException {
      return ch.transferTo(position, count, target);
    }

    @Override
    public FileLock lock(long position, long size, boolean shared) throws IOException {
      return ch.lock(position, size, shared);
    }

    @Override
    public FileLock tryLock(long position, long size, boolean shared) throws IOException {
      return ch.tryLock(position, size, shared);
    }

    @Override
    protected void implCloseChannel() throws IOException {
      ch.close();
    }
  }
}
