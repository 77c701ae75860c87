package dev.lora4j.cli;

import static dev.lora4j.cli.InProcessCli.run;
import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.DistributedConfig;
import dev.lora4j.cli.InProcessCli.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The launcher flags of {@code train} and torchrun's variables (which wins, what is refused), the
 * device of each rank, and the supervisor of --nproc-per-node with real worker JVMs.
 */
class LaunchTest {
  static final String MODEL = "../examples/models/tiny-mistral";
  static final String DATA = "../examples/data/sample-chat.jsonl";

  static LaunchPlan plan(
      Integer nnodes, Integer nodeRank, String addr, Integer port, Integer nproc, String... env) {
    Map<String, String> m = new HashMap<>();
    for (int i = 0; i < env.length; i += 2) m.put(env[i], env[i + 1]);
    return LaunchPlan.resolve(nnodes, nodeRank, addr, port, nproc, m);
  }

  static String refused(Runnable r) {
    return assertThrows(IllegalArgumentException.class, r::run).getMessage();
  }

  @Test
  void flagsAlone() {
    assertEquals(LaunchPlan.Mode.ALONE, plan(null, null, null, null, null).mode());
    LaunchPlan sup = plan(2, 1, "10.0.0.5", 29501, 4);
    assertEquals(LaunchPlan.Mode.SUPERVISOR, sup.mode());
    assertEquals(8, sup.worldSize());
    assertEquals(4, sup.group().rank(), "node 1's first rank");
    assertEquals("10.0.0.5", sup.group().masterAddr());
    assertEquals(29501, sup.group().masterPort());
    LaunchPlan one = plan(null, null, null, null, 2);
    assertEquals(new DistributedConfig(2, 0, 0, "127.0.0.1", 29500), one.group());
    LaunchPlan node = plan(2, 1, "h0", 4000, null);
    assertEquals(LaunchPlan.Mode.RANK, node.mode(), "one rank per node, this process");
    assertEquals(new DistributedConfig(2, 1, 0, "h0", 4000), node.group());
  }

  @Test
  void nonsenseIsRefusedNamingTheFlag() {
    assertTrue(
        refused(() -> plan(2, 2, null, null, 1))
            .startsWith("--node-rank 2 must be below --nnodes 2"));
    assertTrue(
        refused(() -> plan(null, 1, null, null, 2)).startsWith("--node-rank 1 must be below"));
    assertTrue(
        refused(() -> plan(null, null, null, null, 0)).startsWith("--nproc-per-node must be >= 1"));
    assertTrue(refused(() -> plan(0, null, null, null, 1)).startsWith("--nnodes must be >= 1"));
    assertTrue(refused(() -> plan(null, null, null, 70000, 1)).startsWith("--master-port must be"));
    assertTrue(refused(() -> plan(null, -1, null, null, 1)).startsWith("--node-rank must be >= 0"));
  }

  @Test
  void theEnvironmentDescribesTheGroupAndFlagsMustAgree() {
    String[] env = {
      "WORLD_SIZE", "4", "RANK", "3", "LOCAL_RANK", "1", "MASTER_ADDR", "h0", "MASTER_PORT", "555"
    };
    LaunchPlan p = plan(null, null, null, null, null, env);
    assertEquals(LaunchPlan.Mode.RANK, p.mode());
    assertEquals(new DistributedConfig(4, 3, 1, "h0", 555), p.group());
    // flags that agree are accepted
    assertEquals(p.group(), plan(2, 1, "h0", 555, null, env).group());
    assertTrue(
        refused(() -> plan(null, null, null, null, 2, env))
            .startsWith("--nproc-per-node starts its own"));
    assertEquals(
        "--master-addr h1 disagrees with MASTER_ADDR=h0",
        refused(() -> plan(null, null, "h1", null, null, env)));
    assertEquals(
        "--master-port 556 disagrees with MASTER_PORT=555",
        refused(() -> plan(null, null, null, 556, null, env)));
    assertTrue(
        refused(() -> plan(3, null, null, null, null, env))
            .startsWith("--nnodes 3 disagrees with WORLD_SIZE=4"));
    assertTrue(
        refused(() -> plan(2, 0, null, null, null, env))
            .startsWith("--node-rank 0 disagrees with RANK=3"));
    assertTrue(
        refused(() -> plan(null, null, null, null, null, "WORLD_SIZE", "2", "RANK", "1"))
            .contains("MASTER_ADDR is not set"));
    assertEquals(
        LaunchPlan.Mode.ALONE, plan(null, null, null, null, null, "WORLD_SIZE", "1").mode());
  }

  @Test
  void eachRankHasItsDevice() {
    LaunchPlan sup = plan(null, null, null, null, 2);
    assertEquals("cuda:1", sup.device("cuda", 1));
    assertEquals("cuda:0", sup.device("auto", 0));
    assertTrue(
        refused(() -> sup.device("cpu", 0))
            .startsWith("--device cpu cannot train in a group of 2"));
    assertTrue(
        refused(() -> sup.device("cuda:1", 0)).startsWith("--device cuda:1 would put all 2 ranks"));
    // one rank on this host (one per node): an explicit GPU is kept
    LaunchPlan node = plan(2, 0, null, null, 1);
    assertEquals("cuda:1", node.device("cuda:1", 0));
    LaunchPlan alone = plan(null, null, null, null, null);
    assertEquals("cpu", alone.device("cpu", 0));
    LaunchPlan torch =
        plan(
            null,
            null,
            null,
            null,
            null,
            "WORLD_SIZE",
            "2",
            "RANK",
            "1",
            "LOCAL_RANK",
            "1",
            "LOCAL_WORLD_SIZE",
            "2",
            "MASTER_ADDR",
            "a",
            "MASTER_PORT",
            "1");
    assertEquals("cuda:1", torch.device("cuda", 1));
    assertTrue(refused(() -> torch.device("cuda:0", 1)).contains("would put all 2 ranks"));
  }

  @Test
  void workersGetTheArgumentsWithoutTheLauncherFlags() {
    assertEquals(
        List.of("--model", "m", "--data=d", "--device", "cuda"),
        Supervisor.withoutLauncherFlags(
            List.of(
                "--nproc-per-node",
                "2",
                "--model",
                "m",
                "--nnodes=1",
                "--data=d",
                "--node-rank",
                "0",
                "--master-addr",
                "h",
                "--master-port=9",
                "--device",
                "cuda")));
  }

  @Test
  void aCpuGroupIsRefusedBeforeAnythingStarts(@TempDir Path tmp) {
    Path outDir = tmp.resolve("out");
    Result r =
        run(
            "train",
            "--nproc-per-node",
            "2",
            "--device",
            "cpu",
            "--model",
            MODEL,
            "--data",
            DATA,
            "--output",
            outDir.toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("error: --device cpu cannot train in a group of 2 ranks"), r.err());
    assertFalse(r.err().contains("[rank "), "no worker started: " + r.err());
    assertFalse(Files.exists(outDir));
    Result n =
        run(
            "train",
            "--nnodes",
            "2",
            "--node-rank",
            "2",
            "--nproc-per-node",
            "1",
            "--model",
            MODEL,
            "--data",
            DATA,
            "--output",
            outDir.toString());
    assertEquals(1, n.code());
    assertTrue(n.err().contains("error: --node-rank 2 must be below --nnodes 2"), n.err());
    // --device auto (the default) on a host without a usable GPU: said once by the supervisor
    if (dev.lora4j.Device.cudaUnavailableReason() != null) {
      Result a =
          run(
              "train",
              "--nproc-per-node",
              "2",
              "--model",
              MODEL,
              "--data",
              DATA,
              "--output",
              outDir.toString());
      assertEquals(1, a.code(), a.err());
      assertTrue(a.err().contains("error: --device auto finds no usable GPU here"), a.err());
      assertFalse(a.err().contains("[rank "), "no worker started: " + a.err());
      assertFalse(Files.exists(outDir));
    }
  }

  @Test
  void aFailingWorkerFailsTheSupervisorNamingItsRankAndLastLines(@TempDir Path tmp) {
    // two real worker JVMs that fail at once (the data file is not JSON; on a machine without a
    // GPU they may fail earlier, at --device cuda; a missing file the supervisor refuses itself):
    // the supervisor exits non-zero naming a rank, its exit status and its last lines, each
    // prefixed with its rank
    Path bad = tmp.resolve("bad.jsonl");
    try {
      java.nio.file.Files.writeString(bad, "not json\n");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    Result r =
        run(
            "train",
            "--nproc-per-node",
            "2",
            "--device",
            "cuda",
            "--master-port",
            Integer.toString(29_700 + (int) (ProcessHandle.current().pid() % 200)),
            "--model",
            MODEL,
            "--data",
            bad.toString(),
            "--output",
            tmp.resolve("out").toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("started 2 worker(s), ranks 0 .. 1 of 2"), r.err());
    assertTrue(
        r.err()
            .matches(
                "(?s).*lora4j train: error: rank [01] \\(local rank [01] of this host's 2\\) exited"
                    + " with status 1; the other workers were stopped\\. Its last lines:\n"
                    + ".*"),
        r.err());
    String tail = r.err().substring(r.err().indexOf("Its last lines:"));
    assertTrue(tail.matches("(?s).*\n  \\[rank [01]\\] lora4j train: error: .*"), tail);
  }

  @Test
  void aSupervisedRunOfOneTrainsAsAlone(@TempDir Path tmp) throws Exception {
    Path outDir = tmp.resolve("out");
    Result r =
        run(
            "train",
            "--nproc-per-node",
            "1",
            "--device",
            "cpu",
            "--model",
            MODEL,
            "--data",
            DATA,
            "--output",
            outDir.toString(),
            "--steps",
            "2",
            "--batch-size",
            "1",
            "--max-seq-length",
            "64");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("[rank 0] adapter: "), r.out());
    assertTrue(Files.exists(outDir.resolve("adapter/adapter_model.safetensors")));
  }
}
