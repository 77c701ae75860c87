package dev.lora4j.model;

import dev.lora4j.Lora4jException;

/**
 * A model or adapter configuration ({@code config.json}, {@code adapter_config.json}) or an
 * adapter's weights are missing, malformed, unsupported, or do not fit the model. The message names
 * the file and the key or tensor.
 */
public class ConfigException extends Lora4jException {
  private static final long serialVersionUID = 1L;

  /**
   * @param message what is wrong, naming file and key or tensor
   */
  public ConfigException(String message) {
    super(message);
  }

  /**
   * @param message what is wrong, naming file and key or tensor
   * @param cause the underlying failure
   */
  public ConfigException(String message, Throwable cause) {
    super(message, cause);
  }
}
