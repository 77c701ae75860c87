package dev.lora4j;

/**
 * Base class of every exception lora4j throws for a problem with the caller's input, a file or
 * the native core. Unchecked, so that callers handle it where they can act on it.
 */
public class Lora4jException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** @param message what went wrong, naming the file, tensor or key involved */
  public Lora4jException(String message) {
    super(message);
  }

  /**
   * @param message what went wrong, naming the file, tensor or key involved
   * @param cause the underlying failure
   */
  public Lora4jException(String message, Throwable cause) {
    super(message, cause);
  }
}
