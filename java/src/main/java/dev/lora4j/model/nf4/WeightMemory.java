package dev.lora4j.model.nf4;

import dev.lora4j.Quantization;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.ModelLayout;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The device memory a model's frozen weights take on the CUDA backend, computed per tensor without
 * loading anything: bf16 (2 bytes an element) for the embedding, the norms and the LM head, and for
 * the projections too unless they are NF4, then {@link Nf4Tensor#bytes(long, int, boolean, int)}
 * (half a byte an element for the codes, plus the scales). An NF4 model also holds one bf16 scratch
 * buffer the size of its largest projection, which every GEMM with a 4-bit weight reads it through.
 *
 * @param perTensor bytes of each frozen weight, in the core's order
 * @param scratch bytes of the dequantization scratch buffer (0 without NF4)
 */
public record WeightMemory(Map<String, Long> perTensor, long scratch) {
  public WeightMemory {
    perTensor = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(perTensor));
  }

  /**
   * @param c the model
   * @param q how the projections are held
   * @return the bytes of every frozen weight
   */
  public static WeightMemory of(MistralConfig c, Quantization q) {
    Map<String, Long> m = new LinkedHashMap<>();
    long largest = 0;
    for (ModelLayout.Weight w : ModelLayout.of(c).weights()) {
      if (w.projection() != null && q.isNf4()) {
        m.put(
            w.name(),
            Nf4Tensor.bytes(w.numel(), q.blocksize(), q.doubleQuant(), Nf4.NESTED_BLOCKSIZE));
        largest = Math.max(largest, w.numel());
      } else {
        m.put(w.name(), 2 * w.numel());
      }
    }
    return new WeightMemory(m, 2 * largest);
  }

  /**
   * @return the bytes of every weight and the scratch buffer
   */
  public long total() {
    long t = scratch;
    for (long b : perTensor.values()) t += b;
    return t;
  }
}
