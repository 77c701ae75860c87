package dev.lora4j;

import dev.lora4j.nativ.Lora4jLibrary;
import dev.lora4j.nativ.NativeException;
import dev.lora4j.nativ.NativeLibrary;
import java.util.logging.Logger;

/**
 * Where the engine runs: the CPU reference backend (fp32) or one CUDA GPU (bf16 compute, fp32
 * master weights).
 */
public final class Device {
  private static final Logger LOG = Logger.getLogger(Device.class.getName());
  private final int kind;
  private final int index;

  private Device(int kind, int index) {
    this.kind = kind;
    this.index = index;
  }

  /** The CPU backend. */
  public static Device cpu() {
    return new Device(Lora4jLibrary.LORA4J_DEVICE_CPU, 0);
  }

  /**
   * CUDA device {@code index}. Throws when the CUDA backend cannot be loaded or no GPU is present,
   * with the reason.
   */
  public static Device cuda(int index) {
    if (index < 0) throw new IllegalArgumentException("CUDA device index must be >= 0: " + index);
    String why = NativeLibrary.cudaUnavailableReason();
    if (why != null) {
      throw new NativeException(
          Lora4jLibrary.LORA4J_EUNSUPPORTED, "CUDA device " + index + " requested but " + why);
    }
    return new Device(Lora4jLibrary.LORA4J_DEVICE_CUDA, index);
  }

  /**
   * CUDA device 0 when the CUDA backend loads and a GPU is present, else the CPU. The choice is
   * logged at level FINE, with the reason the CUDA backend could not be used ({@link
   * #cudaUnavailableReason()} gives it too).
   */
  public static Device auto() {
    String why = NativeLibrary.cudaUnavailableReason();
    if (why == null) {
      LOG.fine("using CUDA device 0");
      return new Device(Lora4jLibrary.LORA4J_DEVICE_CUDA, 0);
    }
    LOG.fine("using the CPU: " + why);
    return cpu();
  }

  /** Null when a CUDA device can be used; else why not (for example the dlopen error). */
  public static String cudaUnavailableReason() {
    return NativeLibrary.cudaUnavailableReason();
  }

  /** Parses "cpu", "cuda", "cuda:N" or "auto". */
  public static Device parse(String s) {
    String v = s.trim().toLowerCase(java.util.Locale.ROOT);
    if (v.equals("cpu")) return cpu();
    if (v.equals("auto")) return auto();
    if (v.equals("cuda") || v.equals("gpu")) return cuda(0);
    if (v.startsWith("cuda:")) {
      try {
        return cuda(Integer.parseInt(v.substring(5)));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("bad device '" + s + "': expected cuda:N");
      }
    }
    throw new IllegalArgumentException("unknown device '" + s + "': use cpu, cuda, cuda:N or auto");
  }

  public boolean isCuda() {
    return kind == Lora4jLibrary.LORA4J_DEVICE_CUDA;
  }

  /** Native device code (Lora4jLibrary.LORA4J_DEVICE_*). */
  public int kind() {
    return kind;
  }

  public int index() {
    return index;
  }

  @Override
  public String toString() {
    return isCuda() ? "cuda:" + index : "cpu";
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Device d && d.kind == kind && d.index == index;
  }

  @Override
  public int hashCode() {
    return kind * 31 + index;
  }
}
