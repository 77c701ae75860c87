package dev.lora4j.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

/** The command line run in this JVM, its System.out and System.err captured with its writers. */
final class InProcessCli {
  private InProcessCli() {}

  record Result(int code, String out, String err) {}

  static synchronized Result run(String... args) {
    StringWriter out = new StringWriter(), err = new StringWriter();
    PrintStream oldOut = System.out, oldErr = System.err;
    ByteArrayOutputStream so = new ByteArrayOutputStream(), se = new ByteArrayOutputStream();
    System.setOut(new PrintStream(so, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(se, true, StandardCharsets.UTF_8));
    int code;
    try {
      code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
    return new Result(
        code, out + so.toString(StandardCharsets.UTF_8), err + se.toString(StandardCharsets.UTF_8));
  }
}
