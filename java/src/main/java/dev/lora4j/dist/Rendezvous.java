package dev.lora4j.dist;

import dev.lora4j.DistributedConfig;
import dev.lora4j.Lora4jException;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * How the ranks of a group meet before training: rank 0 listens at MASTER_PORT, every other rank
 * connects to MASTER_ADDR:MASTER_PORT and sends its rank, the world size and a digest of the
 * settings that shape the run; when all have come and agree, rank 0 makes the collective library's
 * id (NCCL's unique id) and sends it to each. Only the id travels here: every collective of the
 * training runs through NCCL. The connections then stay open as the group's liveness channel
 * ({@link GroupLink}, made by {@link #meet}).
 *
 * <p>A rank that does not come within the timeout (LORA4J_RENDEZVOUS_TIMEOUT_S, default 300 s), a
 * duplicate rank, another world size or other settings end the rendezvous with an error naming the
 * rank, on rank 0 and on the ranks that did come.
 */
public final class Rendezvous {
  private static final int MAGIC = 0x4c344a52; // "L4JR"
  private static final int OK = 0, ERROR = 1;

  private Rendezvous() {}

  /** SHA-256 of a description of the run's settings (ranks must agree on it). */
  public static byte[] digest(String settings) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(settings.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The default timeout, from LORA4J_RENDEZVOUS_TIMEOUT_S (seconds), else 300 s. */
  public static long defaultTimeoutMillis() {
    String v = System.getenv("LORA4J_RENDEZVOUS_TIMEOUT_S");
    if (v != null) {
      try {
        double s = Double.parseDouble(v.trim());
        if (s > 0) return (long) (s * 1000);
      } catch (NumberFormatException ignored) {
        // the default
      }
    }
    return 300_000;
  }

  public static byte[] exchange(DistributedConfig d, Supplier<byte[]> makeId, byte[] digest) {
    return exchange(d, makeId, digest, defaultTimeoutMillis());
  }

  /**
   * Rank 0: waits for every other rank, checks them, makes the id with makeId and sends it to each.
   * Other ranks: connect (retrying until the timeout, since rank 0 may start later), send their
   * rank, receive the id. Returns the id on every rank; the connections are closed.
   */
  public static byte[] exchange(
      DistributedConfig d, Supplier<byte[]> makeId, byte[] digest, long timeoutMillis) {
    if (d.isSingle()) return null;
    try (GroupLink link =
        meet(d, makeId, digest, timeoutMillis, GroupLink.DEFAULT_INTERVAL_MS, 10 * 60_000)) {
      link.finish();
      return link.id();
    }
  }

  /**
   * The rendezvous of {@link #exchange}, whose connections then stay open as the group's liveness
   * channel (heartbeat every intervalMillis, a peer silent for silenceMillis is lost). Null for a
   * group of one.
   */
  public static GroupLink meet(
      DistributedConfig d,
      Supplier<byte[]> makeId,
      byte[] digest,
      long timeoutMillis,
      long intervalMillis,
      long silenceMillis) {
    if (d.isSingle()) return null;
    try {
      Socket[] peers = new Socket[d.rank() == 0 ? d.worldSize() : 1];
      byte[] id =
          d.rank() == 0
              ? serve(d, makeId, digest, timeoutMillis, peers)
              : join(d, digest, timeoutMillis, peers);
      try {
        return new GroupLink(d, id, peers, intervalMillis, silenceMillis);
      } catch (IOException | RuntimeException e) {
        for (Socket s : peers) if (s != null) s.close();
        throw e;
      }
    } catch (IOException e) {
      throw new Lora4jException(
          "rendezvous of rank "
              + d.rank()
              + " at "
              + d.masterAddr()
              + ":"
              + d.masterPort()
              + " failed: "
              + e,
          e);
    }
  }

  private static byte[] serve(
      DistributedConfig d,
      Supplier<byte[]> makeId,
      byte[] digest,
      long timeoutMillis,
      Socket[] keep)
      throws IOException {
    long deadline = System.currentTimeMillis() + timeoutMillis;
    List<Socket> peers = new ArrayList<>();
    Socket[] byRank = new Socket[d.worldSize()];
    boolean kept = false;
    try (ServerSocket server = new ServerSocket()) {
      server.setReuseAddress(true);
      server.bind(new InetSocketAddress(d.masterPort()));
      int joined = 1;
      while (joined < d.worldSize()) {
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) {
          List<Integer> missing = new ArrayList<>();
          for (int r = 1; r < d.worldSize(); r++) if (byRank[r] == null) missing.add(r);
          String msg =
              "rank(s) "
                  + missing
                  + " of "
                  + d.worldSize()
                  + " did not reach the rendezvous at port "
                  + d.masterPort()
                  + " within "
                  + timeoutMillis / 1000.0
                  + " s";
          fail(peers, msg);
          throw new Lora4jException(msg);
        }
        server.setSoTimeout((int) Math.min(left, Integer.MAX_VALUE));
        Socket s;
        try {
          s = server.accept();
        } catch (SocketTimeoutException e) {
          continue;
        }
        peers.add(s);
        s.setSoTimeout(
            (int) Math.max(1000, Math.min(deadline - System.currentTimeMillis(), 60_000)));
        DataInputStream in = new DataInputStream(s.getInputStream());
        int magic = in.readInt();
        int rank = in.readInt();
        int world = in.readInt();
        byte[] theirs = new byte[in.readInt() & 0xff];
        in.readFully(theirs);
        String problem = null;
        if (magic != MAGIC)
          problem = "a connection that is not a lora4j rank came to port " + d.masterPort();
        else if (world != d.worldSize()) {
          problem = "rank " + rank + " has WORLD_SIZE " + world + ", rank 0 has " + d.worldSize();
        } else if (rank <= 0 || rank >= d.worldSize()) {
          problem =
              "a rank " + rank + " outside 1 .. " + (d.worldSize() - 1) + " came to the rendezvous";
        } else if (byRank[rank] != null) {
          problem = "rank " + rank + " came to the rendezvous twice";
        } else if (!Arrays.equals(theirs, digest)) {
          problem =
              "rank "
                  + rank
                  + " runs with other settings than rank 0 (every rank must get the same"
                  + " model, data and training flags)";
        }
        if (problem != null) {
          fail(peers, problem);
          throw new Lora4jException(problem);
        }
        byRank[rank] = s;
        joined++;
      }
      byte[] id = makeId.get();
      for (int r = 1; r < d.worldSize(); r++) {
        DataOutputStream out = new DataOutputStream(byRank[r].getOutputStream());
        out.writeInt(OK);
        out.writeInt(id.length);
        out.write(id);
        out.flush();
      }
      System.arraycopy(byRank, 0, keep, 0, byRank.length);
      kept = true;
      return id;
    } finally {
      if (!kept) for (Socket s : peers) s.close();
    }
  }

  private static void fail(List<Socket> peers, String msg) {
    for (Socket s : peers) {
      try {
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        out.writeInt(ERROR);
        out.writeUTF(msg);
        out.flush();
      } catch (IOException ignored) {
        // that rank is gone already
      }
    }
  }

  private static byte[] join(DistributedConfig d, byte[] digest, long timeoutMillis, Socket[] keep)
      throws IOException {
    long deadline = System.currentTimeMillis() + timeoutMillis;
    IOException last = null;
    while (System.currentTimeMillis() < deadline) {
      Socket s = new Socket();
      boolean kept = false;
      try {
        s.connect(
            new InetSocketAddress(d.masterAddr(), d.masterPort()),
            (int) Math.max(1, Math.min(5000, deadline - System.currentTimeMillis())));
        s.setSoTimeout((int) Math.max(1000, deadline - System.currentTimeMillis()));
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        out.writeInt(MAGIC);
        out.writeInt(d.rank());
        out.writeInt(d.worldSize());
        out.writeInt(digest.length);
        out.write(digest);
        out.flush();
        DataInputStream in = new DataInputStream(s.getInputStream());
        int status;
        try {
          status = in.readInt();
        } catch (SocketTimeoutException e) {
          throw new Lora4jException(
              "rank "
                  + d.rank()
                  + ": rank 0 at "
                  + d.masterAddr()
                  + ":"
                  + d.masterPort()
                  + " did not answer within "
                  + timeoutMillis / 1000.0
                  + " s (another rank did not come?)");
        }
        if (status != OK) {
          throw new Lora4jException(
              "rank " + d.rank() + ": the rendezvous failed on rank 0: " + in.readUTF());
        }
        byte[] id = new byte[in.readInt()];
        in.readFully(id);
        keep[0] = s;
        kept = true;
        return id;
      } catch (java.net.ConnectException
          | java.net.NoRouteToHostException
          | java.net.UnknownHostException
          | SocketTimeoutException e) {
        last = e;
        try {
          Thread.sleep(200);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw new Lora4jException("rank " + d.rank() + ": interrupted while waiting for rank 0");
        }
      } finally {
        if (!kept) s.close();
      }
    }
    throw new Lora4jException(
        "rank "
            + d.rank()
            + " could not reach rank 0 at "
            + d.masterAddr()
            + ":"
            + d.masterPort()
            + " within "
            + timeoutMillis / 1000.0
            + " s"
            + (last == null ? "" : " (" + last + ")"));
  }
}
