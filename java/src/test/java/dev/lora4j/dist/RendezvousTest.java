package dev.lora4j.dist;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Aggregation;
import dev.lora4j.DistributedConfig;
import dev.lora4j.FaultInjection;
import dev.lora4j.Lora4jException;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The rendezvous that hands a group's id to its ranks (three ranks as threads on localhost), the
 * torchrun variables, and the parsing and tolerance checks of the aggregation and fault settings.
 */
class RendezvousTest {
  static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  @Test
  void everyRankReceivesRankZerosIdMadeOnce() throws Exception {
    int port = freePort();
    byte[] digest = Rendezvous.digest("same settings");
    AtomicInteger made = new AtomicInteger();
    byte[] id = new byte[128];
    for (int i = 0; i < id.length; i++) id[i] = (byte) (i * 7 + 3);
    ExecutorService ex = Executors.newFixedThreadPool(3);
    try {
      List<Future<byte[]>> got = new ArrayList<>();
      for (int r = 2; r >= 0; r--) { // rank 0 last: the others retry until it listens
        DistributedConfig d = new DistributedConfig(3, r, r, "127.0.0.1", port);
        got.add(
            ex.submit(
                () ->
                    Rendezvous.exchange(
                        d,
                        () -> {
                          made.incrementAndGet();
                          return id.clone();
                        },
                        digest,
                        20_000)));
      }
      for (Future<byte[]> f : got) assertArrayEquals(id, f.get(30, TimeUnit.SECONDS));
      assertEquals(1, made.get(), "rank 0 makes the id once");
    } finally {
      ex.shutdownNow();
    }
  }

  @Test
  void otherSettingsOrAMissingRankEndTheRendezvousWithAnErrorNamingTheRank() throws Exception {
    int port = freePort();
    ExecutorService ex = Executors.newFixedThreadPool(2);
    try {
      Future<byte[]> r0 =
          ex.submit(
              () ->
                  Rendezvous.exchange(
                      new DistributedConfig(2, 0, 0, "127.0.0.1", port),
                      () -> new byte[128],
                      Rendezvous.digest("a"),
                      20_000));
      Future<byte[]> r1 =
          ex.submit(
              () ->
                  Rendezvous.exchange(
                      new DistributedConfig(2, 1, 1, "127.0.0.1", port),
                      () -> new byte[128],
                      Rendezvous.digest("b"),
                      20_000));
      Exception e0 = assertThrows(Exception.class, () -> r0.get(30, TimeUnit.SECONDS));
      Exception e1 = assertThrows(Exception.class, () -> r1.get(30, TimeUnit.SECONDS));
      assertTrue(
          e0.getCause().getMessage().contains("rank 1 runs with other settings"),
          e0.getCause().getMessage());
      assertTrue(
          e1.getCause().getMessage().contains("rank 1 runs with other settings"),
          e1.getCause().getMessage());
    } finally {
      ex.shutdownNow();
    }
    int port2 = freePort();
    long t = System.nanoTime();
    Lora4jException e =
        assertThrows(
            Lora4jException.class,
            () ->
                Rendezvous.exchange(
                    new DistributedConfig(3, 0, 0, "127.0.0.1", port2),
                    () -> new byte[128],
                    Rendezvous.digest("a"),
                    1500));
    assertTrue(
        e.getMessage().contains("rank(s) [1, 2] of 3 did not reach the rendezvous"),
        e.getMessage());
    assertTrue((System.nanoTime() - t) / 1e9 < 10);
  }

  @Test
  void torchrunVariables() {
    assertNull(DistributedConfig.fromEnvironment(Map.of()));
    DistributedConfig d =
        DistributedConfig.fromEnvironment(
            Map.of(
                "WORLD_SIZE",
                "4",
                "RANK",
                "3",
                "LOCAL_RANK",
                "1",
                "MASTER_ADDR",
                "node0",
                "MASTER_PORT",
                "29400"));
    assertEquals(new DistributedConfig(4, 3, 1, "node0", 29400), d);
    assertTrue(DistributedConfig.fromEnvironment(Map.of("WORLD_SIZE", "1")).isSingle());
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                DistributedConfig.fromEnvironment(
                    Map.of("WORLD_SIZE", "2", "RANK", "1", "MASTER_PORT", "1")));
    assertTrue(e.getMessage().contains("MASTER_ADDR"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                DistributedConfig.fromEnvironment(
                    Map.of(
                        "WORLD_SIZE", "2", "RANK", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1")));
    assertTrue(e.getMessage().contains("RANK 2"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> DistributedConfig.fromEnvironment(Map.of("WORLD_SIZE", "two")));
    assertTrue(e.getMessage().contains("WORLD_SIZE='two'"), e.getMessage());
  }

  @Test
  void aggregationAndFaultSettings() {
    assertEquals(Aggregation.trimmedMean(1), Aggregation.parse("trimmed-mean"));
    assertEquals(Aggregation.krum(2), Aggregation.parse("Krum:2"));
    assertEquals("centered-clip", Aggregation.parse("centered-clip").toString());
    assertThrows(IllegalArgumentException.class, () -> Aggregation.parse("median:1"));
    assertThrows(IllegalArgumentException.class, () -> Aggregation.parse("geomedian"));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Aggregation.krum(2).check(6, "1 rank(s) x gradientAccumulation 6"));
    assertTrue(
        e.getMessage()
            .startsWith("aggregation krum:2 needs n > 2f + 2 workers, but the run has n = 6"),
        e.getMessage());
    Aggregation.krum(1).check(5, "x"); // n = 2f + 3: accepted
    assertThrows(IllegalArgumentException.class, () -> Aggregation.trimmedMean(2).check(4, "x"));
    Aggregation.trimmedMean(2).check(5, "x");
    assertThrows(IllegalArgumentException.class, () -> Aggregation.median().check(2, "x"));

    FaultInjection f = FaultInjection.parse("gradient-scale:-8@2, nan@0,alie:1.5@5");
    assertEquals("gradient-scale:-8@2,nan@0,alie:1.5@5", f.toString());
    assertThrows(IllegalArgumentException.class, () -> FaultInjection.parse("nan:1@0"));
    assertThrows(IllegalArgumentException.class, () -> FaultInjection.parse("gradient-scale@0"));
    assertThrows(IllegalArgumentException.class, () -> FaultInjection.parse("nan@0,alie:1@0"));
    e =
        assertThrows(
            IllegalArgumentException.class, () -> f.check(4, "1 rank(s) x gradientAccumulation 4"));
    assertTrue(
        e.getMessage().contains("injectFaults names worker 5, but the run has n = 4"),
        e.getMessage());

    // the gradient faults on 4 workers of 3 values: scale, NaN, ALIE from the honest ones
    FaultInjection g = FaultInjection.parse("gradient-scale:-2@0,nan@1,alie:2@3");
    FloatBuffer rows =
        ByteBuffer.allocateDirect(12 * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
    float[] v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    rows.put(v).flip();
    g.corrupt(rows, 4, 3, 0, 1);
    assertArrayEquals(
        new float[] {-2, -4, -6}, new float[] {rows.get(0), rows.get(1), rows.get(2)});
    assertTrue(Float.isNaN(rows.get(3)) && Float.isNaN(rows.get(5)));
    assertArrayEquals(new float[] {7, 8, 9}, new float[] {rows.get(6), rows.get(7), rows.get(8)});
    // the only honest worker is 2: mean 7, 8, 9 and std 0
    assertArrayEquals(new float[] {7, 8, 9}, new float[] {rows.get(9), rows.get(10), rows.get(11)});
  }

  @Test
  void overlapOfTheGradientReductionFollowsTheTransport() {
    DistributedConfig two = new DistributedConfig(2, 0, 0, "127.0.0.1", 29500);
    assertFalse(DistributedConfig.single().overlapsGradientReduction(Map.of()));
    // one host with peer-to-peer (or nothing known): after the backward
    assertFalse(two.overlapsGradientReduction(Map.of()));
    assertFalse(two.overlapsGradientReduction(Map.of("LOCAL_WORLD_SIZE", "2")));
    // several hosts, or peer-to-peer off: overlapped
    assertTrue(two.overlapsGradientReduction(Map.of("LOCAL_WORLD_SIZE", "1")));
    assertTrue(two.overlapsGradientReduction(Map.of("NCCL_P2P_DISABLE", "1")));
    // the setting overrides
    assertTrue(two.overlapsGradientReduction(Map.of("LORA4J_DIST_OVERLAP", "1")));
    assertFalse(
        two.overlapsGradientReduction(Map.of("LORA4J_DIST_OVERLAP", "0", "NCCL_P2P_DISABLE", "1")));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> two.overlapsGradientReduction(Map.of("LORA4J_DIST_OVERLAP", "yes")));
    assertTrue(e.getMessage().contains("LORA4J_DIST_OVERLAP"), e.getMessage());
  }
}
