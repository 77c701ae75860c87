package dev.lora4j.data;

import static dev.lora4j.data.Fakes.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Batch;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BatchTest {
  @TempDir Path dir;

  private static JsonlDataset open(Path f, DataConfig c) {
    return JsonlDataset.open(f, WIDE, CHAT, c);
  }

  /** Pre-tokenized lines of the given lengths; example i starts with the unique id 10 + i. */
  private Path lengths(String name, int... lens) {
    String[] lines = new String[lens.length];
    Random r = new Random(lens.length);
    for (int i = 0; i < lens.length; i++) {
      StringBuilder ids = new StringBuilder().append(10 + i);
      StringBuilder labels = new StringBuilder().append(r.nextBoolean() ? -100 : 10 + i);
      for (int t = 1; t < lens[i]; t++) {
        int id = 3 + r.nextInt(250);
        ids.append(", ").append(id);
        // keep position 1 counted so no example is skipped for having no labels
        labels.append(", ").append(t > 1 && r.nextInt(4) == 0 ? -100 : id);
      }
      lines[i] = "{\"input_ids\": [" + ids + "], \"labels\": [" + labels + "]}";
    }
    return write(dir, name, lines);
  }

  @Test
  void paddingRightPadsWithPadIdMaskAndIgnore() {
    Path f =
        write(dir, "p.jsonl", "{\"text\": \"abc\"}", "{\"text\": \"a\"}", "{\"text\": \"ab\"}");
    List<DataBatch> b = allBatches(open(f, cfg().batchSize(2).build()), DataPosition.START, 1);
    assertEquals(2, b.size(), "the last partial batch is kept");
    Batch first = b.get(0).batch();
    assertEquals(2, first.rows());
    assertEquals(5, first.seq());
    assertArrayEquals(new int[] {1, 100, 101, 102, 2, 1, 100, 2, 0, 0}, first.inputIds());
    assertArrayEquals(new int[] {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, first.attentionMask());
    assertArrayEquals(new int[] {1, 100, 101, 102, 2, 1, 100, 2, -100, -100}, first.labels());
    assertNull(first.positionIds());
    assertNull(first.segmentIds());
    assertEquals(4 + 2, b.get(0).labelTokens());
    assertEquals(new DataPosition(0, 2), b.get(0).next());
    assertEquals(1, b.get(1).batch().rows());
    assertEquals(1, b.get(1).examples());
    assertEquals(new DataPosition(1, 0), b.get(1).next());
    assertEquals(b.get(0).labelTokens(), b.get(0).batch().countedTokens());
  }

  @Test
  void aBatchSizeBeyondTheDataIsOneBatchOfAll() {
    // (a batch size of Integer.MAX_VALUE allocated its row list first: an OutOfMemoryError)
    Path f =
        write(dir, "all.jsonl", "{\"text\": \"abc\"}", "{\"text\": \"a\"}", "{\"text\": \"ab\"}");
    List<DataBatch> b =
        allBatches(open(f, cfg().batchSize(Integer.MAX_VALUE).build()), DataPosition.START, 1);
    assertEquals(1, b.size());
    assertEquals(3, b.get(0).batch().rows());
  }

  @Test
  void packingIsFirstFitInStreamOrder() {
    // rows of 10, 2 rows a batch: 6 -> row 0; 2 -> row 0; 5 -> row 1; 2 -> row 0; 4 -> row 1;
    // 7 fits nowhere -> closes the batch and opens the next
    Path f = lengths("ff.jsonl", 6, 2, 5, 2, 4, 7);
    List<DataBatch> b =
        allBatches(
            open(f, cfg().packing(true).maxSeqLength(10).batchSize(2).build()),
            DataPosition.START,
            1);
    assertEquals(2, b.size());
    Batch p = b.get(0).batch();
    assertEquals(5, b.get(0).examples());
    assertEquals(new DataPosition(0, 5), b.get(0).next());
    assertArrayEquals(
        new int[] {1, 1, 1, 1, 1, 1, 2, 2, 3, 3, /**/ 1, 1, 1, 1, 1, 2, 2, 2, 2, 0},
        p.segmentIds());
    assertArrayEquals(
        new int[] {0, 1, 2, 3, 4, 5, 0, 1, 0, 1, /**/ 0, 1, 2, 3, 4, 0, 1, 2, 3, 0},
        p.positionIds());
    int[] ids = p.inputIds();
    assertEquals(10, ids[0]);
    assertEquals(11, ids[6]);
    assertEquals(13, ids[8]);
    assertEquals(12, ids[10]);
    assertEquals(14, ids[15]);
    assertEquals(0, ids[19], "padding carries padId");
    assertEquals(1, b.get(1).batch().rows());
    assertEquals(15, b.get(1).batch().inputIds()[0]);
    assertEquals(new DataPosition(1, 0), b.get(1).next());
  }

  @Test
  void packingInvariants() {
    int n = 300;
    int[] lens = new int[n];
    Random r = new Random(3);
    for (int i = 0; i < n; i++) lens[i] = 2 + r.nextInt(40);
    lens[7] = 64; // exactly a row
    Path f = lengths("inv.jsonl", lens);
    int seq = 64;
    JsonlDataset ds =
        open(f, cfg().packing(true).maxSeqLength(seq).batchSize(4).shuffleBuffer(16).build());
    List<TokenizedExample> expected = readEpoch(ds, 0);
    List<String> rebuilt = new ArrayList<>();
    long labelTokens = 0;
    long examples = 0;
    for (DataBatch db : allBatches(ds, DataPosition.START, 1)) {
      Batch b = db.batch();
      assertEquals(seq, b.seq(), "rows are exactly maxSeqLength");
      assertTrue(b.rows() <= 4);
      labelTokens += db.labelTokens();
      examples += db.examples();
      assertEquals(b.countedTokens(), db.labelTokens());
      for (int row = 0; row < b.rows(); row++) {
        int at = row * seq;
        int t = 0;
        int segment = 0;
        while (t < seq && b.segmentIds()[at + t] != 0) {
          segment++;
          assertEquals(segment, b.segmentIds()[at + t], "segments number 1, 2, 3, ...");
          int start = t;
          List<Integer> ids = new ArrayList<>();
          while (t < seq && b.segmentIds()[at + t] == segment) {
            assertEquals(t - start, b.positionIds()[at + t], "positions restart at 0");
            assertEquals(1, b.attentionMask()[at + t]);
            ids.add(b.inputIds()[at + t]);
            t++;
          }
          assertEquals(-100, b.labels()[at + start], "first label of a packed example is -100");
          TokenizedExample e = expected.get(indexOf(expected, ids.get(0)));
          assertArrayEquals(e.inputIds(), ids.stream().mapToInt(Integer::intValue).toArray());
          int[] lab = Arrays.copyOfRange(b.labels(), at + start, at + t);
          int[] want = e.labels().clone();
          want[0] = -100;
          assertArrayEquals(want, lab, "labels kept except the first");
          rebuilt.add(Arrays.toString(e.inputIds()));
        }
        for (; t < seq; t++) {
          assertEquals(0, b.segmentIds()[at + t]);
          assertEquals(0, b.attentionMask()[at + t]);
          assertEquals(-100, b.labels()[at + t]);
          assertEquals(0, b.inputIds()[at + t]);
        }
        assertTrue(segment >= 1, "no empty row");
      }
    }
    assertEquals(n, examples);
    List<String> want =
        new ArrayList<>(expected.stream().map(e -> Arrays.toString(e.inputIds())).toList());
    List<String> got = new ArrayList<>(rebuilt);
    want.sort(null);
    got.sort(null);
    assertEquals(want, got, "every example packed exactly once, no token lost");
    long expectedCounted = expected.stream().mapToLong(TokenizedExample::countedTokens).sum();
    assertEquals(expectedCounted, labelTokens, "packing counts what the examples count alone");
  }

  private static int indexOf(List<TokenizedExample> ex, int firstId) {
    for (int i = 0; i < ex.size(); i++) if (ex.get(i).inputIds()[0] == firstId) return i;
    throw new AssertionError("no example starts with " + firstId);
  }

  @Test
  void packRejectsOverfullRows() {
    TokenizedExample e = new TokenizedExample(new int[] {5, 6, 7}, null, "x");
    assertThrows(
        IllegalArgumentException.class, () -> Collation.pack(List.of(List.of(e, e)), 5, 0));
  }

  private void assertSameBatches(List<DataBatch> want, List<DataBatch> got, String what) {
    assertEquals(want.size(), got.size(), what);
    for (int i = 0; i < want.size(); i++)
      assertEquals(describe(want.get(i)), describe(got.get(i)), what + " batch " + i);
  }

  private void resumesExactly(DataConfig c) {
    int n = 57;
    int[] lens = new int[n];
    Random r = new Random(9);
    for (int i = 0; i < n; i++) lens[i] = 2 + r.nextInt(14);
    JsonlDataset ds = open(lengths("res.jsonl", lens), c);
    List<DataBatch> full = allBatches(ds, DataPosition.START, 3);
    for (int e = 0; e < 3; e++) {
      final int epoch = e;
      assertEquals(
          full.stream().filter(b -> b.epoch() == epoch).count(), ds.countBatches(e), "epoch " + e);
    }
    assertEquals(2, full.get(full.size() - 1).epoch());
    assertEquals(new DataPosition(3, 0), full.get(full.size() - 1).next());
    for (int k = 1; k <= full.size(); k++) {
      DataPosition at = full.get(k - 1).next();
      assertSameBatches(
          full.subList(k, full.size()), allBatches(ds, at, 3), "resumed after " + k + " at " + at);
    }
    // the position is the iterator's too
    try (BatchIterator it = ds.batches(DataPosition.START, 3)) {
      assertEquals(DataPosition.START, it.position());
      for (int k = 0; k < 5; k++) it.next();
      assertEquals(full.get(4).next(), it.position());
    }
    // the same batches with and without the background thread
    assertSameBatches(
        full,
        allBatches(
            open(ds.file(), c.toBuilder().prefetch(!c.prefetch()).build()), DataPosition.START, 3),
        "threading");
  }

  @Test
  void resumeGivesTheUninterruptedBatchesPacked() {
    resumesExactly(
        cfg()
            .packing(true)
            .maxSeqLength(24)
            .batchSize(3)
            .shuffleBuffer(7)
            .seed(4)
            .prefetch(true)
            .build());
  }

  @Test
  void resumeGivesTheUninterruptedBatchesPadded() {
    resumesExactly(cfg().batchSize(4).maxSeqLength(12).shuffleBuffer(10).seed(4).build());
  }

  @Test
  void resumeGivesTheUninterruptedBatchesGroupedByLength() {
    // batches of 1: groups of 50 examples, so the 57 examples of an epoch make two groups
    resumesExactly(
        cfg().batchSize(1).groupByLength(true).maxSeqLength(12).shuffleBuffer(10).seed(4).build());
    resumesExactly(
        cfg().batchSize(4).groupByLength(true).maxSeqLength(12).shuffleBuffer(10).seed(4).build());
  }

  /** The real length of each row of a padded batch. */
  private static int[] rowLengths(Batch b) {
    int[] out = new int[b.rows()];
    for (int r = 0; r < b.rows(); r++)
      for (int t = 0; t < b.seq(); t++) out[r] += b.attentionMask()[r * b.seq() + t];
    return out;
  }

  @Test
  void groupByLengthSortsEachGroupLongestFirst() {
    int bs = 2, group = bs * DataConfig.GROUP_BATCHES, n = 2 * group + 7;
    int[] lens = new int[n];
    Random r = new Random(3);
    for (int i = 0; i < n; i++) lens[i] = 2 + r.nextInt(30);
    Path f = lengths("grouped.jsonl", lens);
    DataConfig plain = cfg().batchSize(bs).maxSeqLength(40).build();
    List<DataBatch> grouped =
        allBatches(open(f, plain.toBuilder().groupByLength(true).build()), DataPosition.START, 1);
    List<DataBatch> ungrouped = allBatches(open(f, plain), DataPosition.START, 1);
    assertEquals(ungrouped.size(), grouped.size(), "as many batches: every group is whole batches");
    long padGrouped = 0, padPlain = 0;
    int seen = 0;
    List<Integer> order = new ArrayList<>();
    for (DataBatch db : grouped) {
      Batch b = db.batch();
      for (int row = 0; row < b.rows(); row++) order.add(b.inputIds()[row * b.seq()] - 10);
      for (int len : rowLengths(b)) padGrouped += b.seq() - len;
      assertEquals(seen + b.rows(), db.next().examples() == 0 ? n : db.next().examples());
      seen += b.rows();
    }
    for (DataBatch db : ungrouped)
      for (int len : rowLengths(db.batch())) padPlain += db.batch().seq() - len;
    assertEquals(n, order.size());
    for (int g = 0; g * group < n; g++) {
      int from = g * group, to = Math.min(n, from + group);
      List<Integer> members = new ArrayList<>(order.subList(from, to));
      // group g holds the stream's examples from .. to (file order: no shuffle), longest first,
      // equal lengths in stream order
      List<Integer> want = new ArrayList<>();
      for (int i = from; i < to; i++) want.add(i);
      want.sort((a, b) -> lens[b] != lens[a] ? Integer.compare(lens[b], lens[a]) : a - b);
      assertEquals(want, members, "group " + g);
    }
    assertTrue(
        padGrouped * 4 < padPlain,
        "grouping leaves less padding: " + padGrouped + " against " + padPlain);
    // the last batch of the epoch is the partial one, of the last group's shortest examples
    assertEquals(1, grouped.get(grouped.size() - 1).batch().rows());
    assertEquals(new DataPosition(1, 0), grouped.get(grouped.size() - 1).next());
  }

  @Test
  void groupedPositionOffABatchIsAnError() {
    JsonlDataset ds =
        open(lengths("g.jsonl", 3, 4, 5, 6, 7), cfg().batchSize(2).groupByLength(true).build());
    DataException e =
        assertThrows(DataException.class, () -> allBatches(ds, new DataPosition(0, 3), 1));
    assertTrue(e.getMessage().contains("g.jsonl"), e.getMessage());
    assertTrue(e.getMessage().contains("length group"), e.getMessage());
    e = assertThrows(DataException.class, () -> allBatches(ds, new DataPosition(0, 6), 1));
    assertTrue(e.getMessage().contains("past the end"), e.getMessage());
    assertEquals(1, allBatches(ds, new DataPosition(0, 4), 1).size());
  }

  @Test
  void groupByLengthAndPackingAreRefused() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> cfg().packing(true).groupByLength(true).build());
    assertTrue(e.getMessage().contains("groupByLength(true) and packing(true)"), e.getMessage());
  }

  @Test
  void positionPastTheEpochIsAnError() {
    JsonlDataset ds = open(lengths("short.jsonl", 3, 3, 3), cfg().build());
    DataException e =
        assertThrows(DataException.class, () -> allBatches(ds, new DataPosition(0, 5), 1));
    assertTrue(e.getMessage().contains("short.jsonl"), e.getMessage());
    assertTrue(allBatches(ds, new DataPosition(0, 3), 1).isEmpty());
    assertTrue(allBatches(ds, new DataPosition(1, 0), 1).isEmpty());
  }

  @Test
  void producerExceptionsReachTheConsumerWithTheirMessage() {
    String[] lines = new String[60];
    for (int i = 0; i < 60; i++)
      lines[i] = i == 49 ? "{\"text\": 1}" : "{\"text\": \"t" + i + "\"}";
    Path f = write(dir, "late.jsonl", lines);
    int got = 0;
    DataException e = null;
    try (BatchIterator it = open(f, cfg().batchSize(2).prefetch(true).build()).batches()) {
      try {
        while (it.hasNext()) {
          it.next();
          got++;
        }
      } catch (DataException ex) {
        e = ex;
      }
      assertNotNull(e);
      assertTrue(e.getMessage().contains("late.jsonl:50:"), e.getMessage());
      assertTrue(e.getMessage().contains("must be a string"), e.getMessage());
      assertInstanceOf(DataException.class, e.getCause(), "the producer's exception is the cause");
      assertEquals(24, got, "the batches before the bad line came through");
      assertFalse(it.hasNext());
    }
  }

  @Test
  void queueIsBoundedAndCloseStopsTheThread() throws Exception {
    String[] lines = new String[2000];
    for (int i = 0; i < lines.length; i++) lines[i] = "{\"text\": \"t" + i + "\"}";
    Path f = write(dir, "many.jsonl", lines);
    BatchIterator it = open(f, cfg().batchSize(4).prefetch(true).build()).batches();
    assertTrue(it.hasNext());
    it.next();
    Thread.sleep(300);
    // one batch taken, two in the queue, one built and waiting, and one example looked ahead
    assertTrue(it.stats().examples() <= 4 * 4 + 1, "read ahead " + it.stats().examples());
    assertTrue(it.producerAlive());
    it.close();
    assertFalse(it.producerAlive(), "close stops the thread");
    assertFalse(it.hasNext());
    it.close();
  }
}
