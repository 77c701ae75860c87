package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.Lora4jException;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.TrainingListener;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The built-in listeners on their own thread: order, drains, failures, back-pressure. */
class ListenersTest {
  /** A stream whose every line is kept, after an optional pause and a check made at that time. */
  static final class Lines extends OutputStream {
    final List<String> lines = Collections.synchronizedList(new ArrayList<>());
    final StringBuilder cur = new StringBuilder();
    volatile long pauseMillis;
    volatile CountDownLatch gate; // when set, every line waits for it
    volatile Consumer<String> atLine = s -> {};

    @Override
    public synchronized void write(int b) {
      if (b != '\n') {
        cur.append((char) b);
        return;
      }
      String line = cur.toString();
      cur.setLength(0);
      try {
        if (gate != null) gate.await();
        if (pauseMillis > 0) Thread.sleep(pauseMillis);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      atLine.accept(line);
      lines.add(line);
    }

    PrintStream stream() {
      return new PrintStream(this, true, StandardCharsets.UTF_8);
    }

    List<String> snapshot() {
      synchronized (lines) {
        return List.copyOf(lines);
      }
    }
  }

  static final Pattern STEP = Pattern.compile("step (\\d+)/");

  static TrainingListener.StepMetrics step(long s) {
    return MetricsFileTest.step(s, 1.0);
  }

  static ProgressListener progress(Lines out) {
    return new ProgressListener(out.stream(), false, 1);
  }

  static void plan(Listeners ls, long total) {
    ls.each(
        l ->
            l.onTrainBegin(
                new TrainingListener.TrainingPlan(
                    total, 0, 10, "cpu", 8, null, null, null, List.of())));
  }

  @Test
  void theBuiltInListenersAloneAreQueuedAndOnlyWhenAsked(@TempDir Path dir) {
    TrainingListener own = new TrainingListener() {};
    List<TrainingListener> all =
        List.of(new MetricsFile(dir.resolve("m.jsonl")), progress(new Lines()), own);
    Listeners on = new Listeners(all, true);
    assertTrue(on.queued(0) && on.queued(1) && !on.queued(2));
    assertEquals(List.of("metrics.jsonl", "progress"), List.of(on.name(0), on.name(1)));
    on.close();
    Listeners off = new Listeners(all, false);
    assertFalse(off.queued(0) || off.queued(1) || off.queued(2));
    off.close();
  }

  @Test
  void onByDefaultForAGpuRunOnlyUnlessThePropertySaysOtherwise() {
    String was = System.getProperty("lora4j.listenerThread");
    try {
      System.clearProperty("lora4j.listenerThread");
      assertTrue(Listeners.background(true));
      assertFalse(Listeners.background(false));
      System.setProperty("lora4j.listenerThread", "true");
      assertTrue(Listeners.background(false));
      System.setProperty("lora4j.listenerThread", "false");
      assertFalse(Listeners.background(true));
    } finally {
      if (was == null) System.clearProperty("lora4j.listenerThread");
      else System.setProperty("lora4j.listenerThread", was);
    }
  }

  @Test
  void withoutTheThreadEveryLineIsWrittenBeforeTheEventReturns() {
    Lines out = new Lines();
    Listeners ls = new Listeners(List.of(progress(out)), false);
    plan(ls, 3);
    int before = out.snapshot().size();
    ls.each(l -> l.onStep(step(1)));
    assertEquals(before + 1, out.snapshot().size());
    assertTrue(out.snapshot().get(before).startsWith("step 1/3"), out.snapshot().toString());
    ls.close();
  }

  @Test
  void queuedEventsKeepTheirOrderAndADrainWaitsForThem(@TempDir Path dir) throws Exception {
    Lines out = new Lines();
    out.pauseMillis = 1; // the writer lags behind the events
    Path metrics = dir.resolve("metrics.jsonl");
    Listeners ls = new Listeners(List.of(new MetricsFile(metrics), progress(out)), true);
    plan(ls, 60);
    for (long s = 1; s <= 60; s++) {
      long at = s;
      ls.each(l -> l.onStep(step(at)));
      if (s % 20 == 0) ls.each(l -> l.onCheckpoint(dir.resolve("checkpoint-" + at), at));
    }
    ls.drain();
    List<String> got = out.snapshot().stream().filter(l -> !l.startsWith("training")).toList();
    List<String> want = new ArrayList<>();
    for (long s = 1; s <= 60; s++) {
      want.add("step " + s + "/60");
      if (s % 20 == 0) want.add("checkpoint " + dir.resolve("checkpoint-" + s));
    }
    assertEquals(want.size(), got.size(), got.toString());
    for (int i = 0; i < want.size(); i++)
      assertTrue(got.get(i).startsWith(want.get(i)), got.get(i));
    assertEquals(60, MetricsFileTest.lines(metrics).size());
    ls.close();
  }

  @Test
  void aCallersOwnListenerSeesTheOutputOfEveryEarlierEvent() {
    Lines out = new Lines();
    out.pauseMillis = 5;
    List<String> seen = new ArrayList<>();
    TrainingListener own =
        new TrainingListener() {
          @Override
          public void onStep(StepMetrics m) {
            List<String> lines = out.snapshot();
            String last = lines.isEmpty() ? "" : lines.get(lines.size() - 1);
            seen.add(m.step() + ": " + last);
          }
        };
    Listeners ls = new Listeners(List.of(progress(out), own), true);
    plan(ls, 5);
    for (long s = 1; s <= 5; s++) {
      long at = s;
      ls.each(l -> l.onStep(step(at)));
    }
    ls.close();
    assertEquals(5, seen.size());
    for (int s = 1; s <= 5; s++)
      assertTrue(seen.get(s - 1).startsWith(s + ": step " + s + "/5"), seen.toString());
  }

  /**
   * A step whose queued metrics line fails: thrown at the next event (the progress listener's) or
   * at the drain, whichever comes after the listener thread reached it.
   */
  static Lora4jException stepThatFails(Listeners ls) {
    return assertThrows(
        Lora4jException.class,
        () -> {
          ls.each(l -> l.onStep(step(1)));
          ls.drain();
        });
  }

  @Test
  void aQueuedListenersFailureReachesTheTrainingThreadAndStopsItsDeliveries(@TempDir Path dir)
      throws Exception {
    Path notAFolder = Files.writeString(dir.resolve("file"), "x");
    Lines out = new Lines();
    Listeners ls =
        new Listeners(
            List.of(new MetricsFile(notAFolder.resolve("metrics.jsonl")), progress(out)), true);
    Lora4jException e = stepThatFails(ls);
    assertTrue(e.getMessage().startsWith("cannot write " + notAFolder), e.getMessage());
    // the progress line of that event came after the failure: not delivered, as on one thread
    assertEquals(List.of(), out.snapshot());
    assertSame(e, assertThrows(Lora4jException.class, () -> ls.each(l -> l.onStep(step(2)))));
    RuntimeException run = new RuntimeException("the run's own error");
    ls.closeAfterFailure(run);
    assertSame(e, run.getSuppressed()[0]);
    Listeners again =
        new Listeners(
            List.of(new MetricsFile(notAFolder.resolve("metrics.jsonl")), progress(out)), true);
    Throwable thrown = stepThatFails(again);
    again.closeAfterFailure(thrown); // the failure that ended the run is not added to itself
    assertEquals(0, thrown.getSuppressed().length);
  }

  @Test
  void aFullQueueHoldsTheTrainingThreadBack() throws Exception {
    Lines out = new Lines();
    CountDownLatch gate = new CountDownLatch(1);
    out.gate = gate;
    Listeners ls = new Listeners(List.of(progress(out)), true);
    int n = Listeners.CAPACITY + 10;
    Thread trainer =
        new Thread(
            () -> {
              plan(ls, n);
              for (long s = 1; s <= n; s++) {
                long at = s;
                ls.each(l -> l.onStep(step(at)));
              }
            });
    trainer.start();
    trainer.join(2000);
    assertTrue(trainer.isAlive(), "the training thread went on past a full queue");
    assertTrue(out.snapshot().isEmpty());
    gate.countDown();
    trainer.join(TimeUnit.SECONDS.toMillis(30));
    assertFalse(trainer.isAlive());
    ls.close();
    List<String> got = out.snapshot();
    assertEquals(n + 1, got.size()); // the plan's line and one line a step
    assertTrue(got.get(n).startsWith("step " + n + "/" + n), got.get(n));
  }

  /**
   * Through the trainer, with the progress lines (queued) as the only listener and a writer slower
   * than the steps: each checkpoint appears only after the lines of the steps it covers were
   * written (metrics.jsonl's line of the step, queued before the progress line, with them).
   */
  @Test
  void aCheckpointAppearsAfterTheLinesOfItsSteps(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 40, 5);
    Path o = tmp.resolve("o");
    Lines out = new Lines();
    out.pauseMillis = 40;
    List<String> late = Collections.synchronizedList(new ArrayList<>());
    out.atLine =
        line -> {
          Matcher at = STEP.matcher(line);
          if (!at.lookingAt()) return; // not a step's line (the plan's, a skipped step's)
          long s = Long.parseLong(at.group(1));
          if (Files.exists(o.resolve("checkpoint-" + s)))
            late.add("step " + s + "'s line after its checkpoint");
          try {
            long last = -1;
            for (var n : MetricsFileTest.lines(o.resolve("metrics.jsonl")))
              if (n.get("type").asText().equals("step")) last = n.get("step").asLong();
            if (last != s) late.add("step " + s + "'s line with metrics.jsonl at step " + last);
          } catch (Exception e) {
            late.add(e.toString());
          }
        };
    // the CPU backend keeps its listeners on the training thread unless asked
    String was = System.setProperty("lora4j.listenerThread", "true");
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      LoraTrainer.fit(
          m,
          Dataset.jsonl(d),
          TrainerTest.cfg(o).maxSteps(6).saveSteps(1).saveTotalLimit(10).build(),
          List.of(progress(out)));
    } finally {
      if (was == null) System.clearProperty("lora4j.listenerThread");
      else System.setProperty("lora4j.listenerThread", was);
    }
    long stepLines = out.snapshot().stream().filter(l -> STEP.matcher(l).lookingAt()).count();
    assertEquals(6, stepLines, out.snapshot().toString());
    assertEquals(List.of(), late);
    for (int s = 1; s <= 6; s++) assertTrue(Files.isDirectory(o.resolve("checkpoint-" + s)));
  }
}
