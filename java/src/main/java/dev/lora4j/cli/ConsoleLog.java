package dev.lora4j.cli;

import java.util.Locale;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * The library's log messages on the command line: one line each on standard error, "lora4j:
 * warning: ...", without the timestamp and class name of java.util.logging's default format.
 * Messages below INFO appear with --verbose only.
 */
final class ConsoleLog {
  private static final Logger ROOT = Logger.getLogger("dev.lora4j");
  private static boolean installed;

  private ConsoleLog() {}

  static synchronized void install() {
    if (installed) return;
    installed = true;
    ConsoleHandler h = new ConsoleHandler();
    h.setLevel(Level.ALL);
    h.setFormatter(
        new Formatter() {
          @Override
          public String format(LogRecord r) {
            String level =
                r.getLevel().intValue() >= Level.WARNING.intValue()
                    ? r.getLevel().getName().toLowerCase(Locale.ROOT) + ": "
                    : "";
            return "lora4j: " + level + Flags.translate(formatMessage(r)) + System.lineSeparator();
          }
        });
    ROOT.setUseParentHandlers(false);
    ROOT.addHandler(h);
    ROOT.setLevel(Level.INFO);
  }

  /** With --verbose: the library's detail messages too. */
  static void verbose(boolean on) {
    ROOT.setLevel(on ? Level.FINE : Level.INFO);
  }
}
