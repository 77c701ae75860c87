package dev.lora4j;

import dev.lora4j.model.peft.LoraAdapter;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The AdamW state of an adapter: the step count (for bias correction) and the fp32 first and second
 * moments of every LoRA tensor, keyed by PEFT key name. Saved with a checkpoint so that resuming
 * continues the same optimizer trajectory.
 *
 * @param step optimizer steps applied so far
 * @param expAvg first moment per LoRA tensor (in the order given)
 * @param expAvgSq second moment per LoRA tensor (in the order given)
 */
public record OptimizerState(
    long step, Map<String, LoraAdapter.Weight> expAvg, Map<String, LoraAdapter.Weight> expAvgSq) {

  public OptimizerState {
    if (step < 0) throw new IllegalArgumentException("step must be >= 0, got " + step);
    expAvg = Collections.unmodifiableMap(new LinkedHashMap<>(expAvg));
    expAvgSq = Collections.unmodifiableMap(new LinkedHashMap<>(expAvgSq));
  }

  /** The values of one tensor's moment, or an exception naming the tensor when it is absent. */
  float[] moment(Map<String, LoraAdapter.Weight> m, String name) {
    LoraAdapter.Weight w = m.get(name);
    if (w == null) {
      throw new Lora4jException("optimizer state has no moment for LoRA tensor " + name);
    }
    return w.values();
  }
}
