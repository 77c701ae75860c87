package dev.lora4j;

import java.util.Map;

/**
 * The group of processes a training run is one rank of, as torchrun describes it: {@code
 * WORLD_SIZE} ranks in all, this one {@code RANK} (global) and {@code LOCAL_RANK} (on its host,
 * which picks its GPU), the group meeting at {@code MASTER_ADDR:MASTER_PORT}, where rank 0 hands
 * the collective library's id to the others (see {@code dev.lora4j.dist.Rendezvous}). A group of
 * one ({@link #single()}) is the default and needs nothing.
 *
 * <p>Each rank reads a disjoint share of every optimizer step's micro-batches: the step's
 * micro-batches are numbered 0 .. worldSize x gradientAccumulation - 1 in data order, and rank r
 * takes those whose number modulo worldSize is r. So the step's virtual workers, their data and the
 * applied update are those of one process with worldSize x gradientAccumulation micro-batches. Rank
 * 0 alone writes files.
 */
public record DistributedConfig(
    int worldSize, int rank, int localRank, String masterAddr, int masterPort) {
  /** torchrun's default port. */
  public static final int DEFAULT_PORT = 29500;

  public DistributedConfig {
    if (worldSize < 1)
      throw new IllegalArgumentException("WORLD_SIZE must be >= 1, got " + worldSize);
    if (rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException(
          "RANK " + rank + " is outside 0 .. WORLD_SIZE - 1 (" + (worldSize - 1) + ")");
    }
    if (localRank < 0)
      throw new IllegalArgumentException("LOCAL_RANK must be >= 0, got " + localRank);
    if (masterAddr == null || masterAddr.isBlank()) masterAddr = "127.0.0.1";
    if (masterPort < 1 || masterPort > 65535) {
      throw new IllegalArgumentException("MASTER_PORT must be in 1 .. 65535, got " + masterPort);
    }
  }

  public static DistributedConfig single() {
    return new DistributedConfig(1, 0, 0, "127.0.0.1", DEFAULT_PORT);
  }

  public boolean isSingle() {
    return worldSize == 1;
  }

  /** Rank 0 writes the run's files. */
  public boolean writesFiles() {
    return rank == 0;
  }

  /**
   * The group torchrun-style variables describe (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR,
   * MASTER_PORT), or null when WORLD_SIZE is not set. A variable that is set but malformed, or
   * missing while WORLD_SIZE &gt; 1 (RANK, MASTER_ADDR, MASTER_PORT), is an error naming it.
   */
  public static DistributedConfig fromEnvironment(Map<String, String> env) {
    String ws = env.get("WORLD_SIZE");
    if (ws == null || ws.isBlank()) return null;
    int world = intVar(env, "WORLD_SIZE", null);
    if (world == 1 && env.get("RANK") == null) return single();
    int rank = intVar(env, "RANK", world > 1 ? null : 0);
    int local = intVar(env, "LOCAL_RANK", rank);
    String addr = env.get("MASTER_ADDR");
    if ((addr == null || addr.isBlank()) && world > 1) {
      throw new IllegalArgumentException("WORLD_SIZE is " + world + " but MASTER_ADDR is not set");
    }
    int port = intVar(env, "MASTER_PORT", world > 1 ? null : DEFAULT_PORT);
    return new DistributedConfig(world, rank, local, addr, port);
  }

  private static int intVar(Map<String, String> env, String name, Integer dflt) {
    String v = env.get(name);
    if (v == null || v.isBlank()) {
      if (dflt == null)
        throw new IllegalArgumentException("WORLD_SIZE is set but " + name + " is not");
      return dflt;
    }
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + "='" + v + "' is not a whole number");
    }
  }

  /**
   * Whether the mean rule's gradient all-reduce runs overlapped with the backward
   * (LORA4J_DIST_OVERLAP: 1 or 0; otherwise automatic). Automatic: overlapped when the group spans
   * hosts (LOCAL_WORLD_SIZE below the world size) or NCCL's peer-to-peer transport is off
   * (NCCL_P2P_DISABLE=1), where the reduction is slow enough to hide (2 x H200 over NCCL's socket
   * transport: 659.6 ms per step after the backward, 595.8 overlapped); not on one host with
   * peer-to-peer, where it costs about 2 ms after the backward and overlapping it took longer
   * (602.1 vs 609.1 ms), its kernels competing with the backward's for the SMs.
   */
  public boolean overlapsGradientReduction(Map<String, String> env) {
    if (isSingle()) return false;
    String v = env.getOrDefault("LORA4J_DIST_OVERLAP", "auto").trim();
    if (v.equals("1")) return true;
    if (v.equals("0")) return false;
    if (!v.equals("auto")) {
      throw new IllegalArgumentException(
          "LORA4J_DIST_OVERLAP must be 1, 0 or auto, got '" + v + "'");
    }
    if ("1".equals(env.get("NCCL_P2P_DISABLE"))) return true;
    String local = env.get("LOCAL_WORLD_SIZE");
    try {
      return local != null && Integer.parseInt(local.trim()) < worldSize;
    } catch (NumberFormatException e) {
      return false;
    }
  }
}
