package dev.lora4j.safetensors;

import dev.lora4j.Lora4jException;

/**
 * A safetensors file, or a sharded checkpoint made of them, is unreadable, malformed or does not
 * hold what was asked for. The message names the file and the tensor or header key.
 */
public class SafetensorsException extends Lora4jException {
  private static final long serialVersionUID = 1L;

  /**
   * @param message what is wrong, naming file and tensor or key
   */
  public SafetensorsException(String message) {
    super(message);
  }

  /**
   * @param message what is wrong, naming file and tensor or key
   * @param cause the underlying failure
   */
  public SafetensorsException(String message, Throwable cause) {
    super(message, cause);
  }
}
