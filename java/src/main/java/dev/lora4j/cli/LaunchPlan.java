package dev.lora4j.cli;

import dev.lora4j.DistributedConfig;
import java.util.Map;

/**
 * What the launcher flags of {@code train} (--nnodes, --node-rank, --master-addr, --master-port,
 * --nproc-per-node) and torchrun's environment variables make of one process: a run alone, one rank
 * of a group, or a supervisor that starts --nproc-per-node ranks on this host. Every combination
 * that makes no sense is refused here, naming the flag, before anything starts.
 *
 * @param group the group this process is a rank of (RANK), or the first rank's (SUPERVISOR: rank
 *     node_rank x nproc, the others follow)
 * @param ranksOnHost how many ranks of the group run on this host (for the device choice)
 */
record LaunchPlan(Mode mode, DistributedConfig group, int nodeRank, int nproc, int ranksOnHost) {
  enum Mode {
    /** Alone: no group. */
    ALONE,
    /** One rank of a group (from the environment or the flags). */
    RANK,
    /** Starts nproc worker processes, the ranks of this host. */
    SUPERVISOR
  }

  static LaunchPlan resolve(
      Integer nnodes,
      Integer nodeRank,
      String addr,
      Integer port,
      Integer nproc,
      Map<String, String> env) {
    if (nnodes != null && nnodes < 1)
      throw new IllegalArgumentException("--nnodes must be >= 1, got " + nnodes);
    if (nodeRank != null && nodeRank < 0)
      throw new IllegalArgumentException("--node-rank must be >= 0, got " + nodeRank);
    if (nodeRank != null && nodeRank >= (nnodes == null ? 1 : nnodes)) {
      throw new IllegalArgumentException(
          "--node-rank "
              + nodeRank
              + " must be below --nnodes "
              + (nnodes == null ? "(1 when not given)" : nnodes)
              + ": node ranks are 0 .. nnodes - 1");
    }
    if (nproc != null && nproc < 1)
      throw new IllegalArgumentException("--nproc-per-node must be >= 1, got " + nproc);
    if (port != null && (port < 1 || port > 65535))
      throw new IllegalArgumentException("--master-port must be in 1 .. 65535, got " + port);
    if (addr != null && addr.isBlank())
      throw new IllegalArgumentException("--master-addr must not be empty");

    DistributedConfig fromEnv;
    try {
      fromEnv = DistributedConfig.fromEnvironment(env);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "the environment describes no valid group: " + e.getMessage());
    }
    if (fromEnv != null) {
      String set = "WORLD_SIZE=" + fromEnv.worldSize() + " is set in the environment";
      if (nproc != null) {
        throw new IllegalArgumentException(
            "--nproc-per-node starts its own worker processes, but "
                + set
                + ": this process already is one rank of a group (started by torchrun, Slurm or"
                + " lora4j); leave out --nproc-per-node or unset WORLD_SIZE");
      }
      if (addr != null && !addr.equals(fromEnv.masterAddr())) {
        throw new IllegalArgumentException(
            "--master-addr " + addr + " disagrees with MASTER_ADDR=" + fromEnv.masterAddr());
      }
      if (port != null && port != fromEnv.masterPort()) {
        throw new IllegalArgumentException(
            "--master-port " + port + " disagrees with MASTER_PORT=" + fromEnv.masterPort());
      }
      int nodes = nnodes == null ? 1 : nnodes;
      if (nnodes != null && fromEnv.worldSize() % nnodes != 0) {
        throw new IllegalArgumentException(
            "--nnodes " + nnodes + " disagrees with " + set + " (not a multiple of it)");
      }
      int per = fromEnv.worldSize() / nodes;
      if (nodeRank != null && fromEnv.rank() / per != nodeRank) {
        throw new IllegalArgumentException(
            "--node-rank "
                + nodeRank
                + " disagrees with RANK="
                + fromEnv.rank()
                + " of WORLD_SIZE="
                + fromEnv.worldSize()
                + " (node "
                + fromEnv.rank() / per
                + " with "
                + per
                + " rank(s) per node)");
      }
      int onHost = intOr(env.get("LOCAL_WORLD_SIZE"), fromEnv.localRank() > 0 ? 2 : 1);
      return new LaunchPlan(
          fromEnv.isSingle() ? Mode.ALONE : Mode.RANK, fromEnv, fromEnv.rank() / per, 1, onHost);
    }
    int nodes = nnodes == null ? 1 : nnodes;
    int node = nodeRank == null ? 0 : nodeRank;
    String a = addr == null ? "127.0.0.1" : addr;
    int p = port == null ? DistributedConfig.DEFAULT_PORT : port;
    if (nproc != null) {
      return new LaunchPlan(
          Mode.SUPERVISOR,
          new DistributedConfig(nodes * nproc, node * nproc, 0, a, p),
          node,
          nproc,
          nproc);
    }
    if (nodes == 1) return new LaunchPlan(Mode.ALONE, DistributedConfig.single(), 0, 1, 1);
    return new LaunchPlan(Mode.RANK, new DistributedConfig(nodes, node, 0, a, p), node, 1, 1);
  }

  private static int intOr(String v, int dflt) {
    if (v == null || v.isBlank()) return dflt;
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("LOCAL_WORLD_SIZE='" + v + "' is not a whole number");
    }
  }

  int worldSize() {
    return group.worldSize();
  }

  /**
   * The device a rank of this plan uses, from --device as typed: alone, as typed; in a group, auto
   * and cuda mean cuda:LOCAL_RANK, cpu is refused (the CPU backend has no collectives), and an
   * explicit cuda:N is kept only when this host runs one rank of the group (otherwise its ranks
   * would share GPU N).
   */
  String device(String typed, int localRank) {
    String t = typed.trim().toLowerCase(java.util.Locale.ROOT);
    if (worldSize() == 1) return typed;
    if (t.equals("cpu")) {
      throw new IllegalArgumentException(
          "--device cpu cannot train in a group of "
              + worldSize()
              + " ranks: the CPU backend has no collectives (on the CPU, one process with"
              + " --grad-accum has the same virtual workers)");
    }
    if (t.equals("auto") || t.equals("cuda")) return "cuda:" + localRank;
    if (t.startsWith("cuda:") && ranksOnHost > 1) {
      throw new IllegalArgumentException(
          "--device "
              + typed
              + " would put all "
              + ranksOnHost
              + " ranks of this host on one GPU: give --device cuda (each rank uses"
              + " cuda:LOCAL_RANK) or give each rank its own CUDA_VISIBLE_DEVICES");
    }
    return typed;
  }
}
