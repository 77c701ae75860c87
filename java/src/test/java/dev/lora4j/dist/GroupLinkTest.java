package dev.lora4j.dist;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Device;
import dev.lora4j.DistributedConfig;
import dev.lora4j.Lora4jException;
import dev.lora4j.LoraConfig;
import dev.lora4j.MistralModel;
import dev.lora4j.nativ.NativeException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The liveness channel of a group (ranks as threads on localhost, short heartbeats): a rank whose
 * connection closes or that goes silent is named as lost on every other rank, through rank 0; a
 * rank that ends well is not; the adapters' comparison.
 */
class GroupLinkTest {
  static final long BEAT = 100, SILENCE = 1_000;

  /** world links, rank r with its own heartbeat interval and silence limit. */
  static List<GroupLink> group(int world, long[] interval, long[] silence) throws Exception {
    int port = RendezvousTest.freePort();
    byte[] id = new byte[128];
    id[5] = 42;
    ExecutorService ex = Executors.newFixedThreadPool(world);
    try {
      List<Future<GroupLink>> fs = new ArrayList<>();
      for (int r = 0; r < world; r++) {
        DistributedConfig d = new DistributedConfig(world, r, r, "127.0.0.1", port);
        final int rank = r;
        fs.add(
            ex.submit(
                () ->
                    Rendezvous.meet(
                        d,
                        id::clone,
                        Rendezvous.digest("s"),
                        20_000,
                        interval[rank],
                        silence[rank])));
      }
      List<GroupLink> links = new ArrayList<>();
      for (Future<GroupLink> f : fs) links.add(f.get(30, TimeUnit.SECONDS));
      for (GroupLink l : links) assertArrayEquals(id, l.id());
      return links;
    } finally {
      ex.shutdownNow();
    }
  }

  static List<GroupLink> group(int world) throws Exception {
    long[] b = new long[world], s = new long[world];
    java.util.Arrays.fill(b, BEAT);
    java.util.Arrays.fill(s, SILENCE);
    return group(world, b, s);
  }

  /** Waits up to ms for the link to report a loss; returns it (null: none). */
  static String awaitLost(GroupLink l, long ms) throws InterruptedException {
    long end = System.currentTimeMillis() + ms;
    while (l.lost() == null && System.currentTimeMillis() < end) Thread.sleep(10);
    return l.lost();
  }

  @Test
  void aRankWhoseConnectionClosesIsLostOnEveryOtherRank() throws Exception {
    List<GroupLink> g = group(3);
    try {
      AtomicReference<String> handled = new AtomicReference<>();
      CountDownLatch called = new CountDownLatch(1);
      g.get(1)
          .onLost(
              why -> {
                handled.set(why);
                called.countDown();
              });
      Thread.sleep(3 * BEAT);
      assertNull(g.get(0).lost(), "heartbeats keep the group alive");
      assertNull(g.get(1).lost());
      long t0 = System.nanoTime();
      g.get(2).close(); // as a process killed with SIGKILL: its sockets close, no goodbye
      String at0 = awaitLost(g.get(0), 5_000);
      String at1 = awaitLost(g.get(1), 5_000);
      double secs = (System.nanoTime() - t0) / 1e9;
      assertNotNull(at0, "rank 0 sees rank 2's connection close");
      assertTrue(at0.startsWith("rank 2 was lost: its connection closed"), at0);
      assertEquals(at0, at1, "rank 0 tells rank 1 which rank was lost");
      assertTrue(called.await(5, TimeUnit.SECONDS), "rank 1's handler ran");
      assertEquals(at0, handled.get());
      assertTrue(secs < 3, "well before the silence limit: " + secs + " s");
      Lora4jException e = assertThrows(Lora4jException.class, () -> g.get(1).checkAlive());
      assertTrue(e.getMessage().contains("rank 2 was lost"), e.getMessage());
      AtomicReference<String> late = new AtomicReference<>();
      g.get(0).onLost(late::set);
      assertEquals(at0, late.get(), "a handler added after the loss runs at once");
    } finally {
      for (GroupLink l : g) l.close();
    }
  }

  @Test
  void aSilentRankIsLostAfterTheSilenceLimit() throws Exception {
    // rank 1 sends one heartbeat, then nothing for a minute (as a stopped process would)
    List<GroupLink> g = group(2, new long[] {BEAT, 60_000}, new long[] {SILENCE, 120_000});
    try {
      long t0 = System.nanoTime();
      String why = awaitLost(g.get(0), 10_000);
      double secs = (System.nanoTime() - t0) / 1e9;
      assertNotNull(why, "rank 0 notices the silence");
      assertTrue(why.startsWith("rank 1 was lost: nothing came from it for 1.0 s"), why);
      assertTrue(secs >= 0.5 && secs < 5, "about the silence limit: " + secs + " s");
      assertNotNull(awaitLost(g.get(1), 5_000), "rank 1 hears of it too");
      assertTrue(g.get(1).lost().contains("rank 1 was lost"), g.get(1).lost());
    } finally {
      for (GroupLink l : g) l.close();
    }
  }

  @Test
  void rankZeroLostIsNamedOnTheOthers() throws Exception {
    List<GroupLink> g = group(2);
    try {
      g.get(0).close();
      String why = awaitLost(g.get(1), 5_000);
      assertNotNull(why);
      assertTrue(why.startsWith("rank 0 was lost"), why);
    } finally {
      for (GroupLink l : g) l.close();
    }
  }

  @Test
  void ranksThatFinishAreNotLost() throws Exception {
    List<GroupLink> g = group(3);
    try {
      g.get(2).finish();
      g.get(1).finish();
      Thread.sleep(SILENCE + 500);
      assertNull(g.get(0).lost(), "a goodbye is no loss");
      g.get(0).finish();
      Thread.sleep(200);
      for (GroupLink l : g) assertNull(l.lost());
    } finally {
      for (GroupLink l : g) l.close();
    }
  }

  @Test
  void adaptersAreComparedByRankZero() throws Exception {
    List<GroupLink> g = group(3);
    ExecutorService ex = Executors.newFixedThreadPool(3);
    try {
      byte[] same = Rendezvous.digest("adapter");
      List<CompletableFuture<String>> fs = new ArrayList<>();
      for (GroupLink l : g)
        fs.add(CompletableFuture.supplyAsync(() -> l.compareAdapters(7, same, 10_000), ex));
      for (CompletableFuture<String> f : fs) {
        String line = f.get(20, TimeUnit.SECONDS);
        assertTrue(
            line.startsWith("adapters bitwise equal on all 3 ranks (sha256 ")
                && line.endsWith(") after step 7"),
            line);
      }
      // rank 2 differs: every rank fails, naming it
      byte[] other = Rendezvous.digest("other adapter");
      fs.clear();
      for (int r = 0; r < 3; r++) {
        GroupLink l = g.get(r);
        byte[] mine = r == 2 ? other : same;
        fs.add(CompletableFuture.supplyAsync(() -> l.compareAdapters(8, mine, 10_000), ex));
      }
      for (CompletableFuture<String> f : fs) {
        Exception e = assertThrows(Exception.class, () -> f.get(20, TimeUnit.SECONDS));
        String msg = e.getCause().getMessage();
        assertTrue(msg.contains("after step 8: rank(s) [2] differ from rank 0"), msg);
      }
      for (GroupLink l : g) assertNull(l.lost(), "a difference is no lost rank");
    } finally {
      ex.shutdownNow();
      for (GroupLink l : g) l.close();
    }
  }

  @Test
  void abortingTheGroupFromAnotherThreadFailsTheCollectivesWithTheReason() throws Exception {
    try (MistralModel m =
        MistralModel.load(Path.of("../examples/models/tiny-mistral"), Device.cpu())) {
      m.attachNewAdapter(LoraConfig.builder().rank(4).alpha(8).build(), 7);
      byte[] before = m.adapterSha256();
      assertArrayEquals(before, m.adapterSha256(), "the hash is a function of the adapter");
      m.joinGroup(null, 1, 0);
      m.allReduceGradients(); // a group of one: nothing to exchange
      Thread t = new Thread(() -> m.abortGroup("rank 3 was lost: test"));
      t.start();
      t.join();
      NativeException e = assertThrows(NativeException.class, m::allReduceGradients);
      assertTrue(e.getMessage().contains("rank 3 was lost: test"), e.getMessage());
      e = assertThrows(NativeException.class, () -> m.allReduceSums(new double[] {1}));
      assertTrue(e.getMessage().contains("rank 3 was lost: test"), e.getMessage());
      assertArrayEquals(before, m.adapterSha256(), "the engine still works");
      m.attachNewAdapter(LoraConfig.builder().rank(4).alpha(8).build(), 8);
      assertFalse(
          java.util.Arrays.equals(before, m.adapterSha256()), "another adapter, another hash");
      m.close();
      m.abortGroup("after close: nothing to abort"); // no exception, no crash
    }
  }

  @Test
  void aComparisonWithALostRankFailsNamingIt() throws Exception {
    List<GroupLink> g = group(2);
    try {
      g.get(1).close();
      Lora4jException e =
          assertThrows(
              Lora4jException.class,
              () -> g.get(0).compareAdapters(3, Rendezvous.digest("a"), 10_000));
      assertTrue(e.getMessage().startsWith("rank 1 was lost"), e.getMessage());
    } finally {
      for (GroupLink l : g) l.close();
    }
  }
}
