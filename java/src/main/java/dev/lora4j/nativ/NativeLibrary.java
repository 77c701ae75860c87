package dev.lora4j.nativ;

import java.io.File;
import java.util.logging.Logger;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;

/**
 * Loads the native core from the jar, and finds the CUDA backend library: the one packed in the jar
 * (extracted beside the core), or the file named by the system property {@code lora4j.cuda.library}
 * or the environment variable {@code LORA4J_CUDA_LIBRARY}.
 */
public final class NativeLibrary {
  private static final Logger LOG = Logger.getLogger(NativeLibrary.class.getName());
  private static volatile boolean loaded;

  private NativeLibrary() {}

  /** Loads liblora4j and its JNI glue once; a failure is an exception that says why. */
  public static synchronized void ensureLoaded() {
    if (loaded) return;
    try {
      Loader.load(Lora4jLibrary.class);
    } catch (UnsatisfiedLinkError e) {
      throw new NativeException(
          Lora4jLibrary.LORA4J_EUNSUPPORTED,
          "the lora4j native library could not be loaded for platform "
              + Loader.getPlatform()
              + ": "
              + e.getMessage());
    }
    String path = System.getProperty("lora4j.cuda.library");
    if (path == null || path.isEmpty()) {
      try {
        File f =
            Loader.cacheResource(Lora4jLibrary.class, Loader.getPlatform() + "/liblora4j_cuda.so");
        if (f != null) path = f.getAbsolutePath();
      } catch (Exception e) {
        LOG.fine("no CUDA backend packed in the jar: " + e.getMessage());
      }
    }
    if (path != null && !path.isEmpty()) {
      try (BytePointer p = new BytePointer(path)) {
        NativeEngine.check(Lora4jLibrary.lora4j_cuda_set_library(p));
      }
    }
    loaded = true;
  }

  /** Null when a CUDA device can be used; else the reason it cannot. */
  public static String cudaUnavailableReason() {
    ensureLoaded();
    try (IntPointer available = new IntPointer(1);
        BytePointer reason = new BytePointer(1024)) {
      NativeEngine.check(Lora4jLibrary.lora4j_cuda_available(available, reason, 1024));
      return available.get() != 0 ? null : NativeEngine.cString(reason);
    }
  }

  /** The core's version as major.minor.patch. */
  public static String version() {
    ensureLoaded();
    try (IntPointer major = new IntPointer(1);
        IntPointer minor = new IntPointer(1);
        IntPointer patch = new IntPointer(1)) {
      NativeEngine.check(Lora4jLibrary.lora4j_version(major, minor, patch));
      return major.get() + "." + minor.get() + "." + patch.get();
    }
  }
}
