package dev.lora4j.data;

import static dev.lora4j.data.Fakes.*;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShuffleSplitTest {
  @TempDir Path dir;

  /** Counts how far the shuffle has pulled ahead of what it handed out. */
  static final class Counting implements Iterator<Integer> {
    final int n;
    int pulled;

    Counting(int n) {
      this.n = n;
    }

    @Override
    public boolean hasNext() {
      return pulled < n;
    }

    @Override
    public Integer next() {
      return pulled++;
    }
  }

  private static List<Integer> shuffle(int n, int size, long seed) {
    List<Integer> out = new ArrayList<>();
    new ShuffleBuffer<>(new Counting(n), size, seed).forEachRemaining(out::add);
    return out;
  }

  @Test
  void sameSeedSameOrderOtherSeedOtherOrder() {
    List<Integer> a = shuffle(5000, 100, 7);
    assertEquals(a, shuffle(5000, 100, 7));
    assertNotEquals(a, shuffle(5000, 100, 8));
    assertEquals(
        java.util.stream.IntStream.range(0, 5000).boxed().collect(Collectors.toList()),
        a.stream().sorted().collect(Collectors.toList()),
        "a permutation");
    assertNotEquals(a.stream().sorted().collect(Collectors.toList()), a, "actually shuffled");
  }

  @Test
  void bufferIsBounded() {
    Counting src = new Counting(10_000);
    ShuffleBuffer<Integer> s = new ShuffleBuffer<>(src, 64, 1);
    int emitted = 0;
    int maxHeld = 0;
    while (s.hasNext()) {
      int v = s.next();
      emitted++;
      maxHeld = Math.max(maxHeld, src.pulled - emitted);
      assertTrue(s.buffered() <= 64);
      // an item cannot be handed out before the buffer has pulled it: it moves up at most 64 places
      assertTrue(v < emitted + 64, "item " + v + " at position " + emitted);
    }
    assertEquals(10_000, emitted);
    assertTrue(maxHeld <= 64, "held " + maxHeld);
    assertTrue(maxHeld >= 63, "the buffer is used: " + maxHeld);
  }

  @Test
  void bufferOfOneKeepsTheOrder() {
    List<Integer> a = shuffle(100, 1, 3);
    for (int i = 0; i < 100; i++) assertEquals(i, a.get(i));
    assertEquals(a, shuffle(100, 0, 3));
  }

  private Path numbered(String name, int n) {
    String[] lines = new String[n];
    for (int i = 0; i < n; i++) lines[i] = "{\"text\": \"line " + (i + 1) + "\"}";
    return write(dir, name, lines);
  }

  private static List<String> sources(List<TokenizedExample> ex) {
    return ex.stream().map(TokenizedExample::source).collect(Collectors.toList());
  }

  @Test
  void epochsReshuffleReproducibly() {
    Path f = numbered("e.jsonl", 500);
    JsonlDataset ds = open(f, cfg().shuffleBuffer(50).seed(11).build());
    List<String> e0 = sources(readEpoch(ds, 0));
    List<String> e1 = sources(readEpoch(ds, 1));
    assertEquals(500, e0.size());
    assertEquals(e0, sources(readEpoch(ds, 0)), "same seed and epoch: same order");
    assertNotEquals(e0, e1, "another epoch: another order");
    assertEquals(new HashSet<>(e0), new HashSet<>(e1), "same examples");
    assertNotEquals(sources(readAll(ds)), e0, "shuffled");
    List<String> otherSeed =
        sources(readEpoch(open(f, cfg().shuffleBuffer(50).seed(12).build()), 0));
    assertNotEquals(e0, otherSeed);
  }

  @Test
  void validationSplitIsDisjointCompleteAndDeterministic() {
    Path f = numbered("s.jsonl", 2000);
    DataConfig c = cfg().validationFraction(0.1).seed(5).shuffleBuffer(100).build();
    JsonlDataset all = open(f, c);
    Set<String> train = new HashSet<>(sources(readEpoch(all.train(), 0)));
    List<String> valList = sources(readEpoch(all.validation(), 3));
    Set<String> val = new HashSet<>(valList);
    assertEquals(valList, sources(readAll(all.validation())), "validation is never shuffled");
    assertTrue(val.size() > 150 && val.size() < 250, "about 10%: " + val.size());
    Set<String> both = new HashSet<>(train);
    both.retainAll(val);
    assertTrue(both.isEmpty(), "overlap " + both);
    Set<String> union = new HashSet<>(train);
    union.addAll(val);
    assertEquals(new HashSet<>(sources(readAll(all))), union);
    for (String s : val) {
      long line = Long.parseLong(s.substring(s.lastIndexOf(':') + 1));
      assertTrue(JsonlDataset.isValidationLine(line, 5, 0.1));
    }
    // same seed: same split; another seed: another split
    assertEquals(val, new HashSet<>(sources(readAll(open(f, c).validation()))));
    assertNotEquals(
        val, new HashSet<>(sources(readAll(open(f, c.toBuilder().seed(6).build()).validation()))));
    // validation lines are scattered through the file, not a block
    List<Integer> lines =
        valList.stream().map(s -> Integer.parseInt(s.substring(s.lastIndexOf(':') + 1))).toList();
    assertTrue(lines.get(0) < 200 && lines.get(lines.size() - 1) > 1800, lines.toString());
  }

  @Test
  void splitWithoutFractionIsRefused() {
    JsonlDataset ds = open(numbered("n.jsonl", 3), cfg().build());
    assertThrows(IllegalStateException.class, ds::validation);
    assertEquals(3, readAll(ds.train()).size());
  }

  @Test
  void badLineInTheOtherSplitIsNotThisSplitsError() {
    // find a line number that goes to validation with seed 1 and fraction 0.3, make it malformed
    int bad = 1;
    while (!JsonlDataset.isValidationLine(bad, 1, 0.3)) bad++;
    String[] lines = new String[40];
    for (int i = 0; i < 40; i++) lines[i] = (i + 1 == bad) ? "{oops" : "{\"text\": \"x" + i + "\"}";
    Path f = write(dir, "other.jsonl", lines);
    JsonlDataset ds = open(f, cfg().validationFraction(0.3).seed(1).build());
    assertFalse(readAll(ds.train()).isEmpty());
    DataException e = assertThrows(DataException.class, () -> readAll(ds.validation()));
    assertTrue(e.getMessage().contains("other.jsonl:" + bad + ":"), e.getMessage());
  }
}
