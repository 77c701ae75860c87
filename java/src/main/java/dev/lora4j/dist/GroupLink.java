package dev.lora4j.dist;

import dev.lora4j.DistributedConfig;
import dev.lora4j.Lora4jException;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * The connections of the rendezvous (rank 0 to every other rank), kept open for the whole run as a
 * liveness channel beside the collectives. Each side sends a heartbeat every interval (default 2
 * s); a peer whose connection closes, or that sends nothing for the silence limit (default 20 s),
 * is lost. Rank 0 then tells every other rank which rank was lost, and every rank runs the handlers
 * given to {@link #onLost} (the trainer aborts its collective group, which a dead peer may
 * otherwise leave waiting forever: over NVLink or shared memory NCCL need not notice).
 *
 * <p>The channel also carries the check that the ranks hold the same adapter: each rank sends the
 * SHA-256 of its adapter's bytes ({@link #compareAdapters}), rank 0 compares them and answers every
 * rank with the verdict.
 *
 * <p>A run that ends well says so ({@link #finish}) before it closes, so that its closing
 * connection is not taken for a lost rank; a run that fails just closes, and the others learn it as
 * a lost rank.
 */
public final class GroupLink implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(GroupLink.class.getName());

  static final int HEARTBEAT = 1, LOST = 2, DIGEST = 3, VERDICT = 4, BYE = 5;

  /** Heartbeat interval and silence limit by default (LORA4J_HEARTBEAT_S, LORA4J_SILENCE_S). */
  public static final long DEFAULT_INTERVAL_MS = 2_000, DEFAULT_SILENCE_MS = 20_000;

  private final DistributedConfig group;
  private final byte[] id;

  /** Rank 0: the socket of rank r at index r (index 0 unused). Other ranks: rank 0's at 0. */
  private final Socket[] peers;

  private final DataOutputStream[] outs;
  private final DataInputStream[] ins;
  private final long intervalMs, silenceMs;
  private final AtomicReference<String> lost = new AtomicReference<>();
  private final List<Consumer<String>> handlers = new CopyOnWriteArrayList<>();

  /** The peers that said goodbye ({@link #finish}): their closing connection is no loss. */
  private final java.util.Set<Integer> said = java.util.concurrent.ConcurrentHashMap.newKeySet();

  private volatile boolean closing;
  private final List<Thread> threads = new ArrayList<>();

  /** Rank 0: the digests the other ranks sent, by step. */
  private final Map<Long, byte[][]> digests = new HashMap<>();

  /** Other ranks: rank 0's verdicts. */
  private final LinkedBlockingQueue<Verdict> verdicts = new LinkedBlockingQueue<>();

  private record Verdict(long step, boolean ok, String message) {}

  /**
   * A link over connected sockets: on rank 0, peers[r] is rank r's (r = 1 .. world - 1); on the
   * others peers[0] is rank 0's and the rest are null. Starts the heartbeat and reader threads.
   */
  GroupLink(DistributedConfig group, byte[] id, Socket[] peers, long intervalMs, long silenceMs)
      throws IOException {
    if (intervalMs <= 0 || silenceMs <= intervalMs) {
      throw new IllegalArgumentException(
          "the silence limit ("
              + silenceMs
              + " ms) must exceed the heartbeat interval ("
              + intervalMs
              + " ms)");
    }
    this.group = group;
    this.id = id;
    this.peers = peers;
    this.intervalMs = intervalMs;
    this.silenceMs = silenceMs;
    this.outs = new DataOutputStream[peers.length];
    this.ins = new DataInputStream[peers.length];
    for (int p = 0; p < peers.length; p++) {
      if (peers[p] == null) continue;
      peers[p].setSoTimeout((int) Math.min(silenceMs, Integer.MAX_VALUE));
      peers[p].setTcpNoDelay(true);
      outs[p] = new DataOutputStream(peers[p].getOutputStream());
      ins[p] = new DataInputStream(peers[p].getInputStream());
    }
    for (int p = 0; p < peers.length; p++) {
      if (peers[p] == null) continue;
      final int peer = p;
      Thread t = new Thread(() -> read(peer), "lora4j-link-read-" + peer);
      t.setDaemon(true);
      threads.add(t);
    }
    Thread beat = new Thread(this::beat, "lora4j-link-heartbeat");
    beat.setDaemon(true);
    threads.add(beat);
    for (Thread t : threads) t.start();
  }

  /** The collective library's id that rank 0 handed out at the rendezvous. */
  public byte[] id() {
    return id.clone();
  }

  public DistributedConfig group() {
    return group;
  }

  /** Heartbeat interval from LORA4J_HEARTBEAT_S, else 2 s. */
  public static long defaultIntervalMillis() {
    return envMillis("LORA4J_HEARTBEAT_S", DEFAULT_INTERVAL_MS);
  }

  /** Silence limit from LORA4J_SILENCE_S, else 20 s. */
  public static long defaultSilenceMillis() {
    return envMillis("LORA4J_SILENCE_S", DEFAULT_SILENCE_MS);
  }

  private static long envMillis(String name, long dflt) {
    String v = System.getenv(name);
    if (v == null || v.isBlank()) return dflt;
    try {
      double s = Double.parseDouble(v.trim());
      if (s > 0) return (long) (s * 1000);
    } catch (NumberFormatException ignored) {
      // the message below
    }
    throw new IllegalArgumentException(name + "='" + v + "' is not a positive number of seconds");
  }

  /**
   * Runs handler (at once when a rank is already lost) with the reason when a rank is lost; it runs
   * on the link's thread and must not block.
   */
  public void onLost(Consumer<String> handler) {
    handlers.add(handler);
    String why = lost.get();
    if (why != null) handler.accept(why);
  }

  /** Why the group is broken ("rank 1 was lost: ..."), or null while every rank is alive. */
  public String lost() {
    return lost.get();
  }

  /** Throws a {@link Lora4jException} naming the lost rank when one is lost. */
  public void checkAlive() {
    String why = lost.get();
    if (why != null) throw new Lora4jException(why);
  }

  private void read(int peer) {
    DataInputStream in = ins[peer];
    while (!closing) {
      int type;
      try {
        type = in.readInt();
        switch (type) {
          case HEARTBEAT -> {}
          case LOST -> {
            String why = in.readUTF();
            if (group.rank() != 0) markLost(why);
          }
          case DIGEST -> {
            long step = in.readLong();
            byte[] sha = new byte[32];
            in.readFully(sha);
            synchronized (digests) {
              digests.computeIfAbsent(step, s -> new byte[group.worldSize()][])[peer] = sha;
              digests.notifyAll();
            }
          }
          case VERDICT -> verdicts.add(new Verdict(in.readLong(), in.readBoolean(), in.readUTF()));
          case BYE -> {
            said.add(peer);
            return;
          }
          default -> {
            peerLost(peer, "it sent an unknown message (" + type + ")");
            return;
          }
        }
      } catch (SocketTimeoutException e) {
        if (closing) return;
        peerLost(
            peer,
            "nothing came from it for "
                + silenceMs / 1000.0
                + " s (no heartbeat: killed, stopped or cut off)");
        return;
      } catch (EOFException e) {
        if (closing) return;
        peerLost(peer, "its connection closed (the process ended: killed or failed)");
        return;
      } catch (IOException e) {
        if (closing) return;
        peerLost(peer, "its connection failed (" + e.getMessage() + ")");
        return;
      }
    }
  }

  private void beat() {
    while (!closing) {
      for (int p = 0; p < peers.length; p++) {
        if (peers[p] == null || said.contains(p)) continue;
        try {
          send(p, out -> out.writeInt(HEARTBEAT));
        } catch (IOException e) {
          // the reader of that peer reports it
        }
      }
      try {
        Thread.sleep(intervalMs);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private interface Message {
    void write(DataOutputStream out) throws IOException;
  }

  private void send(int peer, Message m) throws IOException {
    DataOutputStream out = outs[peer];
    synchronized (out) {
      m.write(out);
      out.flush();
    }
  }

  private void peerLost(int peer, String why) {
    markLost("rank " + peer + " was lost: " + why);
  }

  private void markLost(String reason) {
    if (!lost.compareAndSet(null, reason)) return;
    LOG.severe(reason);
    if (group.rank() == 0) {
      for (int p = 1; p < peers.length; p++) {
        if (peers[p] == null || said.contains(p)) continue;
        try {
          send(
              p,
              out -> {
                out.writeInt(LOST);
                out.writeUTF(reason);
              });
        } catch (IOException | RuntimeException ignored) {
          // that rank is gone as well
        }
      }
    }
    for (Consumer<String> h : handlers) {
      try {
        h.accept(reason);
      } catch (RuntimeException e) {
        LOG.warning("after losing a rank: " + e.getMessage());
      }
    }
  }

  /**
   * Compares the adapters of every rank after step: each rank gives the SHA-256 of its adapter's
   * bytes, rank 0 compares them and tells every rank. Returns the line to log when they are equal;
   * throws a {@link Lora4jException} naming the ranks that differ, the lost rank, or the timeout.
   */
  public String compareAdapters(long step, byte[] sha256, long timeoutMillis) {
    if (sha256.length != 32) throw new IllegalArgumentException("a SHA-256 has 32 bytes");
    long deadline = System.currentTimeMillis() + timeoutMillis;
    checkAlive();
    if (group.rank() != 0) {
      try {
        send(
            0,
            out -> {
              out.writeInt(DIGEST);
              out.writeLong(step);
              out.write(sha256);
            });
        for (; ; ) {
          checkAlive();
          long left = deadline - System.currentTimeMillis();
          if (left <= 0) throw compareTimeout(step, timeoutMillis, "rank 0's verdict");
          Verdict v = verdicts.poll(Math.min(left, 200), TimeUnit.MILLISECONDS);
          if (v == null) continue;
          if (v.step() != step) {
            throw new Lora4jException(
                "rank "
                    + group.rank()
                    + " compared its adapter after step "
                    + step
                    + " but rank 0 answered for step "
                    + v.step()
                    + ": the ranks are out of step");
          }
          if (!v.ok()) throw new Lora4jException(v.message());
          return v.message();
        }
      } catch (IOException e) {
        checkAlive();
        throw new Lora4jException("rank " + group.rank() + " cannot reach rank 0: " + e, e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new Lora4jException("interrupted while comparing the adapters");
      }
    }
    byte[][] all;
    synchronized (digests) {
      for (; ; ) {
        checkAlive();
        byte[][] got = digests.get(step);
        int have = 0;
        if (got != null) for (int r = 1; r < got.length; r++) if (got[r] != null) have++;
        if (have == group.worldSize() - 1) {
          all = digests.remove(step);
          break;
        }
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) throw compareTimeout(step, timeoutMillis, "every rank's digest");
        try {
          digests.wait(Math.min(left, 200));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new Lora4jException("interrupted while comparing the adapters");
        }
      }
    }
    all[0] = sha256;
    HexFormat hex = HexFormat.of();
    List<Integer> differ = new ArrayList<>();
    for (int r = 1; r < all.length; r++) if (!Arrays.equals(all[r], sha256)) differ.add(r);
    boolean ok = differ.isEmpty();
    String message;
    if (ok) {
      message =
          "adapters bitwise equal on all "
              + group.worldSize()
              + " ranks (sha256 "
              + hex.formatHex(sha256)
              + ") after step "
              + step;
    } else {
      StringBuilder sb =
          new StringBuilder("the ranks' adapters differ after step ")
              .append(step)
              .append(": rank(s) ")
              .append(differ)
              .append(" differ from rank 0 (rank 0 sha256 ")
              .append(hex.formatHex(sha256));
      for (int r : differ) sb.append(", rank ").append(r).append(' ').append(hex.formatHex(all[r]));
      message = sb.append(')').toString();
    }
    for (int r = 1; r < peers.length; r++) {
      try {
        send(
            r,
            out -> {
              out.writeInt(VERDICT);
              out.writeLong(step);
              out.writeBoolean(ok);
              out.writeUTF(message);
            });
      } catch (IOException e) {
        checkAlive();
        throw new Lora4jException("rank 0 cannot reach rank " + r + ": " + e, e);
      }
    }
    if (!ok) throw new Lora4jException(message);
    return message;
  }

  private Lora4jException compareTimeout(long step, long timeoutMillis, String what) {
    return new Lora4jException(
        "rank "
            + group.rank()
            + " waited "
            + timeoutMillis / 1000.0
            + " s for "
            + what
            + " on the adapters after step "
            + step
            + ": the ranks are out of step");
  }

  /**
   * Says to the peers that this rank ended well (its closing connection is then no lost rank) and
   * closes. Call it after the last exchange of the run.
   */
  public void finish() {
    for (int p = 0; p < peers.length; p++) {
      if (peers[p] == null) continue;
      try {
        send(p, out -> out.writeInt(BYE));
      } catch (IOException ignored) {
        // a peer that is gone needs no goodbye
      }
    }
    close();
  }

  /** Stops the threads and closes the connections (without a goodbye: peers see a lost rank). */
  @Override
  public void close() {
    closing = true;
    for (Socket s : peers) {
      if (s == null) continue;
      try {
        s.close();
      } catch (IOException ignored) {
        // closing anyway
      }
    }
    for (Thread t : threads) t.interrupt();
  }
}
