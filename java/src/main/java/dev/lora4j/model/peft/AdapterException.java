package dev.lora4j.model.peft;

import dev.lora4j.Lora4jException;

/**
 * A LoRA adapter's weights are missing, unexpected, of the wrong shape or dtype, or do not fit the
 * model. The message names the adapter file and the tensor.
 */
public class AdapterException extends Lora4jException {
  private static final long serialVersionUID = 1L;

  /**
   * @param message what is wrong, naming file and tensor
   */
  public AdapterException(String message) {
    super(message);
  }

  /**
   * @param message what is wrong, naming file and tensor
   * @param cause the underlying failure
   */
  public AdapterException(String message, Throwable cause) {
    super(message, cause);
  }
}
