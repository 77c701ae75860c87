package dev.lora4j;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.data.Collation;
import dev.lora4j.data.TokenizedExample;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The count of label tokens is written once in Java ({@link TokenizedExample#labelTokens}, used by
 * examples, batches and the trainer) and once in the native core (the tokens lora4j_eval_loss and
 * lora4j_forward_backward return). This test holds the two together on random batches: padded and
 * packed, labels masked at random, rows with no label at all, one-token rows.
 */
class LabelTokensTest {
  static final Path MODEL = Path.of("src/test/resources/hf-reference/tiny/model");

  @Test
  void javaCountIsTheEnginesCountOnRandomBatches() {
    SplittableRandom r = new SplittableRandom(11);
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      int checked = 0;
      long zeroRows = 0;
      for (int trial = 0; trial < 60; trial++) {
        List<TokenizedExample> ex = new ArrayList<>();
        int rows = 1 + r.nextInt(4);
        for (int i = 0; i < rows; i++) ex.add(randomExample(r, 1 + r.nextInt(24), "t" + trial));
        Batch padded = Collation.pad(ex, 0);
        int total = ex.stream().mapToInt(TokenizedExample::length).sum();
        Batch packed = Collation.pack(List.of(ex), total + r.nextInt(3), 0);
        long alone = 0;
        for (TokenizedExample e : ex) {
          alone += e.countedTokens();
          if (e.countedTokens() == 0) zeroRows++;
        }
        for (Batch b : List.of(padded, packed)) {
          long java = b.countedTokens();
          LossSum ls = m.evalLossSum(b);
          assertEquals(java, ls.tokens(), "trial " + trial + ": Java and the engine differ");
          if (java > 0) assertTrue(Double.isFinite(ls.sum()) && ls.sum() > 0, "trial " + trial);
          else assertEquals(0.0, ls.sum());
          checked++;
        }
        assertEquals(alone, padded.countedTokens(), "padding adds no label token");
        // packing labels each example's first position -100, which no example counts alone either
        assertEquals(alone, packed.countedTokens(), "packing keeps each example's label tokens");
      }
      assertEquals(120, checked);
      assertTrue(zeroRows > 0, "some rows have no label token");
    }
  }

  @Test
  void theHelperCountsPositionsAfterTheFirst() {
    int[] l = {5, -100, 7, 8, -100, 9};
    assertEquals(3, TokenizedExample.labelTokens(l, 0, 6), "position 0 never counts");
    assertEquals(2, TokenizedExample.labelTokens(l, 1, 4), "a row from index 1: 7 and 8");
    assertEquals(0, TokenizedExample.labelTokens(l, 2, 1), "a one-token row counts nothing");
    assertEquals(
        2,
        new Batch(2, 3, new int[6], null, l, null, null).countedTokens(),
        "rows [5, -100, 7] and [8, -100, 9]: 7 and 9");
  }

  static TokenizedExample randomExample(SplittableRandom r, int len, String source) {
    int[] ids = new int[len], labels = new int[len];
    double masked = r.nextInt(4) == 0 ? 1.0 : r.nextDouble() * 0.6;
    for (int t = 0; t < len; t++) {
      ids[t] = 3 + r.nextInt(500);
      labels[t] = r.nextDouble() < masked ? TokenizedExample.IGNORE : ids[t];
    }
    return new TokenizedExample(ids, labels, source);
  }
}
