package dev.lora4j.cli;

import dev.lora4j.Lora4jException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The lora4j command line: {@code java -jar lora4j-<version>-cli.jar <command> [options]}. Every
 * command has {@code --help}; a failure prints one line with the reason and exits non-zero (1 for
 * bad input or a failed run, 2 for a usage error).
 */
@Command(
    name = "lora4j",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "LoRA fine-tuning of Mistral models on the JVM.",
    subcommands = {
      TrainCommand.class,
      EvalCommand.class,
      GenerateCommand.class,
      MergeCommand.class,
      ExportGgufCommand.class,
      TokenizeCommand.class,
      InitModelCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
  }

  /** Runs the command line and returns the exit code (for tests and embedding). */
  public static int run(String[] args, PrintWriter out, PrintWriter err) {
    ConsoleLog.install();
    CommandLine cl = new CommandLine(new Main());
    cl.setUsageHelpAutoWidth(true);
    cl.setOut(out);
    cl.setErr(err);
    // a usage error: the reason, picocli's suggestions for a mistyped option or command, and
    // where the options are listed (the whole usage text, ~100 lines, buried the reason)
    cl.setParameterExceptionHandler(
        (ex, args1) -> {
          CommandLine cmd = ex.getCommandLine();
          String path = cmd.getCommandSpec().qualifiedName(); // "lora4j" or "lora4j train"
          err.println(path + ": error: " + oneLine(ex.getMessage()));
          CommandLine.UnmatchedArgumentException.printSuggestions(ex, err);
          err.println("Try '" + path + " --help' for the options.");
          err.flush();
          return cmd.getCommandSpec().exitCodeOnInvalidInput();
        });
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          Throwable t = ex;
          if (t instanceof Lora4jException
              || t instanceof IllegalArgumentException
              || t instanceof IllegalStateException
              || t instanceof java.io.UncheckedIOException) {
            err.println(
                "lora4j "
                    + cmd.getCommandName()
                    + ": error: "
                    // a --config file's error names its keys as written
                    + oneLine(
                        t instanceof TrainCommand.ConfigFileException
                            ? t.getMessage()
                            : Flags.translate(t.getMessage())));
          } else {
            err.println("lora4j " + cmd.getCommandName() + ": error: " + t);
            if (System.getenv("LORA4J_DEBUG") != null) t.printStackTrace(err);
          }
          err.flush();
          return 1;
        });
    return cl.execute(args);
  }

  static String oneLine(String s) {
    return s == null ? "(no message)" : s.replace('\n', ' ');
  }

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  /** The project's version, which the build writes into dev/lora4j/version.properties. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() throws IOException {
      Properties p = new Properties();
      try (InputStream in = Main.class.getResourceAsStream("/dev/lora4j/version.properties")) {
        if (in == null) throw new IOException("dev/lora4j/version.properties is missing");
        p.load(in);
      }
      return new String[] {"lora4j " + p.getProperty("version")};
    }
  }
}
