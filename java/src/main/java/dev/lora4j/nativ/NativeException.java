package dev.lora4j.nativ;

import dev.lora4j.Lora4jException;

/**
 * A native call returned a non-zero status. The message is the core's own, which names the
 * argument, tensor or device call that failed; {@link #status()} is the C status code.
 */
public class NativeException extends Lora4jException {
  private static final long serialVersionUID = 1L;
  private final int status;

  public NativeException(int status, String message) {
    super(message);
    this.status = status;
  }

  /** The status code of lora4j.h (LORA4J_EINVAL, LORA4J_ENOMEM, ...). */
  public int status() {
    return status;
  }

  /**
   * True when an aggregation rule refused a step because more workers sent non-finite gradients
   * than it tolerates (LORA4J_EFAULTY).
   */
  public boolean isTooManyFaultyWorkers() {
    return status == Lora4jLibrary.LORA4J_EFAULTY;
  }

  /** True when the failure was an allocation that did not fit (host or device memory). */
  public boolean isOutOfMemory() {
    return status == Lora4jLibrary.LORA4J_ENOMEM;
  }

  static String statusName(int status) {
    switch (status) {
      case Lora4jLibrary.LORA4J_EINVAL:
        return "invalid argument";
      case Lora4jLibrary.LORA4J_ESTATE:
        return "invalid state";
      case Lora4jLibrary.LORA4J_ENOMEM:
        return "out of memory";
      case Lora4jLibrary.LORA4J_EDEVICE:
        return "device error";
      case Lora4jLibrary.LORA4J_EUNSUPPORTED:
        return "unsupported";
      case Lora4jLibrary.LORA4J_EINTERNAL:
        return "internal error";
      case Lora4jLibrary.LORA4J_EFAULTY:
        return "too many faulty workers";
      default:
        return "status " + status;
    }
  }
}
