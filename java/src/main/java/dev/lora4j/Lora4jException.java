package dev.lora4j;

/** Base of every exception lora4j throws for bad input, bad files or failed native calls. */
public class Lora4jException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public Lora4jException(String message) {
    super(message);
  }

  public Lora4jException(String message, Throwable cause) {
    super(message, cause);
  }
}
