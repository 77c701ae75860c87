package dev.lora4j.data;

import dev.lora4j.Lora4jException;

/** Bad training data: the message names the file and line (or example) at fault. */
public class DataException extends Lora4jException {
  private static final long serialVersionUID = 1L;

  public DataException(String message) {
    super(message);
  }

  public DataException(String message, Throwable cause) {
    super(message, cause);
  }
}
