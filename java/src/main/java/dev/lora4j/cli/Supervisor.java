package dev.lora4j.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code train --nproc-per-node K}: starts K worker JVMs on this host, the ranks node_rank x K ..
 * node_rank x K + K - 1 of a group of nnodes x K, each with torchrun's variables (WORLD_SIZE, RANK,
 * LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and the same command line minus the launcher flags. It
 * prefixes each worker's output lines with {@code [rank i]}, keeps their last lines, forwards
 * SIGINT and SIGTERM (its shutdown hook stops the workers, forcibly after a grace period), and when
 * a worker exits with a non-zero status stops the others and fails naming that rank, its status and
 * its last lines.
 */
final class Supervisor {
  /** The launcher's own flags, which the workers do not get (each takes a value). */
  static final Set<String> LAUNCHER_FLAGS =
      Set.of("--nproc-per-node", "--nnodes", "--node-rank", "--master-addr", "--master-port");

  static final int TAIL_LINES = 20;

  /** How long the others may take to end by themselves after a worker failed, then SIGTERM. */
  static final long SETTLE_MS = 5_000;

  /** After SIGTERM, how long before SIGKILL. */
  static final long GRACE_MS = 10_000;

  private final LaunchPlan plan;
  private final List<String> workerArgs;
  private final PrintStream out, err;
  private final List<Process> workers = new ArrayList<>();
  private final List<Deque<String>> tails = new ArrayList<>();
  private final List<Thread> pumps = new ArrayList<>();

  Supervisor(LaunchPlan plan, List<String> workerArgs, PrintStream out, PrintStream err) {
    this.plan = plan;
    this.workerArgs = workerArgs;
    this.out = out;
    this.err = err;
  }

  /** The arguments without the launcher flags (as "--flag value" or "--flag=value"). */
  static List<String> withoutLauncherFlags(List<String> args) {
    List<String> kept = new ArrayList<>();
    for (int i = 0; i < args.size(); i++) {
      String a = args.get(i);
      int eq = a.indexOf('=');
      String name = eq > 0 ? a.substring(0, eq) : a;
      if (LAUNCHER_FLAGS.contains(name)) {
        if (eq < 0) i++; // its value
        continue;
      }
      kept.add(a);
    }
    return kept;
  }

  /** The command that starts a worker: this JVM's java, its JVM arguments and class path. */
  static List<String> javaCommand() {
    String javaBin =
        ProcessHandle.current()
            .info()
            .command()
            .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    List<String> cmd = new ArrayList<>();
    cmd.add(javaBin);
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      // A debugger's agent would make every worker listen at the same port.
      if (a.startsWith("-agentlib:jdwp") || a.startsWith("-Xrunjdwp")) continue;
      cmd.add(a);
    }
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(Main.class.getName());
    return cmd;
  }

  /** Runs the workers to their end; returns the exit status for the command. */
  int run() throws IOException, InterruptedException {
    int k = plan.nproc();
    List<String> cmd = javaCommand();
    cmd.add("train");
    cmd.addAll(workerArgs);
    Thread hook = new Thread(this::stopAll, "lora4j-supervisor-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      for (int i = 0; i < k; i++) {
        int rank = plan.nodeRank() * k + i;
        ProcessBuilder pb = new ProcessBuilder(cmd);
        Map<String, String> env = pb.environment();
        env.put("WORLD_SIZE", Integer.toString(plan.worldSize()));
        env.put("RANK", Integer.toString(rank));
        env.put("LOCAL_RANK", Integer.toString(i));
        env.put("LOCAL_WORLD_SIZE", Integer.toString(k));
        env.put("GROUP_RANK", Integer.toString(plan.nodeRank()));
        env.put("MASTER_ADDR", plan.group().masterAddr());
        env.put("MASTER_PORT", Integer.toString(plan.group().masterPort()));
        env.put("LORA4J_SUPERVISOR_PID", Long.toString(ProcessHandle.current().pid()));
        Process p = pb.start();
        Deque<String> tail = new ArrayDeque<>();
        synchronized (workers) {
          workers.add(p);
          tails.add(tail);
        }
        pump(p.getInputStream(), out, rank, tail);
        pump(p.getErrorStream(), err, rank, tail);
      }
      err.println(
          "lora4j: started "
              + k
              + " worker(s), ranks "
              + plan.nodeRank() * k
              + " .. "
              + (plan.nodeRank() * k + k - 1)
              + " of "
              + plan.worldSize()
              + " (rendezvous at "
              + plan.group().masterAddr()
              + ":"
              + plan.group().masterPort()
              + ")");
      return watch();
    } finally {
      stopAll();
      for (Thread t : pumps) t.join(2_000);
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // shutting down: the hook runs
      }
    }
  }

  private void pump(InputStream in, PrintStream to, int rank, Deque<String> tail) {
    Thread t =
        new Thread(
            () -> {
              try (BufferedReader r =
                  new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                  synchronized (tail) {
                    tail.addLast(line);
                    if (tail.size() > TAIL_LINES) tail.removeFirst();
                  }
                  synchronized (Supervisor.class) {
                    to.println("[rank " + rank + "] " + line);
                  }
                }
              } catch (IOException e) {
                // the worker is gone
              }
            },
            "lora4j-rank-" + rank + "-output");
    t.setDaemon(true);
    t.start();
    pumps.add(t);
  }

  /** Waits until every worker ended well, or one failed: then stops the others and reports. */
  private int watch() throws InterruptedException {
    int k = workers.size();
    boolean[] done = new boolean[k];
    int left = k;
    while (left > 0) {
      for (int i = 0; i < k; i++) {
        if (done[i] || workers.get(i).isAlive()) continue;
        done[i] = true;
        left--;
        int status = workers.get(i).exitValue();
        if (status != 0) return failed(i, status);
      }
      Thread.sleep(50);
    }
    return 0;
  }

  private int failed(int i, int status) throws InterruptedException {
    int rank = plan.nodeRank() * plan.nproc() + i;
    // The others learn of the loss through the group's liveness channel and end by themselves,
    // naming the lost rank; those that do not are stopped.
    long deadline = System.currentTimeMillis() + SETTLE_MS;
    for (Process p : workers) {
      long wait = deadline - System.currentTimeMillis();
      if (wait > 0) p.waitFor(wait, java.util.concurrent.TimeUnit.MILLISECONDS);
    }
    stopAll();
    for (Thread t : pumps) t.join(2_000);
    List<String> last;
    synchronized (tails.get(i)) {
      last = new ArrayList<>(tails.get(i));
    }
    StringBuilder sb =
        new StringBuilder("lora4j train: error: rank ")
            .append(rank)
            .append(" (local rank ")
            .append(i)
            .append(" of this host's ")
            .append(plan.nproc())
            .append(") exited with status ")
            .append(status)
            .append(status > 128 ? " (killed by signal " + (status - 128) + ")" : "")
            .append("; the other workers were stopped. Its last lines:");
    for (String l : last)
      sb.append(System.lineSeparator()).append("  [rank ").append(rank).append("] ").append(l);
    if (last.isEmpty()) sb.append(" (none)");
    err.println(sb);
    return status > 0 && status < 256 ? status : 1;
  }

  /** SIGTERM to the workers still running, SIGKILL to those still running after the grace. */
  private void stopAll() {
    List<Process> ps;
    synchronized (workers) {
      ps = new ArrayList<>(workers);
    }
    for (Process p : ps) if (p.isAlive()) p.destroy();
    long deadline = System.currentTimeMillis() + GRACE_MS;
    for (Process p : ps) {
      try {
        long wait = deadline - System.currentTimeMillis();
        if (wait > 0) p.waitFor(wait, java.util.concurrent.TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    for (Process p : ps) if (p.isAlive()) p.destroyForcibly();
  }
}
