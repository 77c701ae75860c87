package dev.lora4j.data;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The lines of a file, each decoded as UTF-8 on its own, so that one undecodable line is a problem
 * of that line (named with its number) and not of the whole file. Lines end at {@code \n}; a {@code
 * \r} before it is dropped. A line with bytes that are not UTF-8, or with NUL bytes (binary data,
 * or UTF-16 text), has no text but a {@link #problem()}.
 */
final class Utf8Lines implements Closeable {
  private final InputStream in;
  private final byte[] buf = new byte[1 << 16];
  private int pos;
  private int lim;
  private byte[] line = new byte[256];
  private int len;
  private long number;
  private String text;
  private String problem;
  private final CharsetDecoder decoder =
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT);

  Utf8Lines(Path file) throws IOException {
    this.in = Files.newInputStream(file);
  }

  /** Reads the next line; false at the end of the file. */
  boolean next() throws IOException {
    len = 0;
    boolean any = false;
    while (true) {
      if (pos == lim) {
        lim = in.read(buf, 0, buf.length);
        pos = 0;
        if (lim <= 0) {
          lim = 0;
          if (!any) return false;
          break;
        }
      }
      any = true;
      int start = pos;
      while (pos < lim && buf[pos] != '\n') pos++;
      append(start, pos - start);
      if (pos < lim) {
        pos++;
        break;
      }
    }
    if (len > 0 && line[len - 1] == '\r') len--;
    number++;
    decode();
    return true;
  }

  /** 1-based number of the current line. */
  long number() {
    return number;
  }

  /** The current line's text, or null when it is not UTF-8 text. */
  String text() {
    return text;
  }

  /** Why the current line has no text, or null. */
  String problem() {
    return problem;
  }

  private void append(int from, int n) {
    if (len + n > line.length) line = Arrays.copyOf(line, Math.max(line.length * 2, len + n));
    System.arraycopy(buf, from, line, len, n);
    len += n;
  }

  private void decode() {
    text = null;
    problem = null;
    if (number == 1
        && len >= 2
        && ((line[0] == (byte) 0xFF && line[1] == (byte) 0xFE)
            || (line[0] == (byte) 0xFE && line[1] == (byte) 0xFF))) {
      problem = "not UTF-8 text: the file starts with a UTF-16 byte-order mark (save it as UTF-8)";
      return;
    }
    ByteBuffer src = ByteBuffer.wrap(line, 0, len);
    CharBuffer dst = CharBuffer.allocate(len);
    decoder.reset();
    CoderResult r = decoder.decode(src, dst, true);
    if (!r.isError()) r = decoder.flush(dst);
    if (r.isError()) {
      int at = src.position();
      problem =
          String.format(
              "not UTF-8 text: byte 0x%02X at byte %d of the line is not valid UTF-8 (the data"
                  + " must be UTF-8)",
              line[at] & 0xFF, at + 1);
      return;
    }
    dst.flip();
    String s = dst.toString();
    int nul = s.indexOf('\0');
    if (nul >= 0) {
      problem =
          "not UTF-8 text: NUL byte at character "
              + (nul + 1)
              + " (binary data, or UTF-16 text; the data must be UTF-8)";
      return;
    }
    text = s;
  }

  @Override
  public void close() throws IOException {
    in.close();
  }
}
