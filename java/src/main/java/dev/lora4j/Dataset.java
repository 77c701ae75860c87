package dev.lora4j;

import dev.lora4j.data.DataFormat;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Training data: a JSONL file, read as a stream. The format (text, prompt/completion, Alpaca, chat
 * messages, pre-tokenized) is detected from the file unless set here or in {@link
 * TrainingConfig#dataFormat()}.
 */
public final class Dataset {
  private final Path file;
  private final DataFormat format;

  private Dataset(Path file, DataFormat format) {
    this.file = file;
    this.format = format;
  }

  /** A JSONL file; the format is detected from its lines. */
  public static Dataset jsonl(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new Lora4jException("data file " + file + " does not exist or is not a file");
    }
    return new Dataset(file, null);
  }

  /** The same file read with an explicit format. */
  public Dataset format(DataFormat f) {
    return new Dataset(file, f);
  }

  public Path file() {
    return file;
  }

  /** The explicit format, or null to detect it. */
  public DataFormat format() {
    return format;
  }

  @Override
  public String toString() {
    return file + (format == null ? "" : " (" + format + ")");
  }
}
