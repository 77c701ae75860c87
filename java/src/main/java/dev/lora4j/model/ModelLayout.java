package dev.lora4j.model;

import dev.lora4j.model.peft.LoraTarget;
import dev.lora4j.nativ.Lora4jLibrary;
import dev.lora4j.nativ.NativeEngine;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The frozen weights of a Mistral model of a given config: the Hugging Face name, shape and decoder
 * layer of each, and which projection it is. They are read from the native core ({@code
 * lora4j_weight_count} / {@code lora4j_weight_info} in lora4j.h), the one place the model's layout
 * is written: the engine loads exactly these tensors, checkpoints are checked against them, {@link
 * RandomModel} writes them, and the LoRA widths of {@link LoraTarget} are the shapes of the
 * projections here.
 *
 * <p>Layouts are immutable and cached per config (a few recent ones).
 */
public final class ModelLayout {
  /**
   * One frozen weight.
   *
   * @param name Hugging Face name, e.g. {@code model.layers.0.self_attn.q_proj.weight}
   * @param shape {@code [hidden]} for the norm weights, {@code [out, in]} for projections, {@code
   *     [vocab, hidden]} for the embedding and the LM head
   * @param layer the decoder layer, -1 for the embedding, the final norm and the LM head
   * @param projection the projection this weight is (its LoRA target), or null for the others
   */
  public record Weight(String name, long[] shape, int layer, LoraTarget projection) {
    /**
     * @return a copy of the shape
     */
    @Override
    public long[] shape() {
      return shape.clone();
    }

    /**
     * @return the number of elements
     */
    public long numel() {
      long n = 1;
      for (long d : shape) n *= d;
      return n;
    }
  }

  private static final int CACHED = 8;
  private static final Map<MistralConfig, ModelLayout> CACHE =
      Collections.synchronizedMap(
          new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<MistralConfig, ModelLayout> e) {
              return size() > CACHED;
            }
          });

  private final List<Weight> weights;
  private final Weight[] projections; // [layer * 7 + target ordinal]

  private ModelLayout(MistralConfig c, List<NativeEngine.WeightSpec> specs) {
    LoraTarget[] targets = LoraTarget.values();
    List<Weight> w = new ArrayList<>(specs.size());
    projections = new Weight[c.numHiddenLayers() * targets.length];
    for (NativeEngine.WeightSpec s : specs) {
      LoraTarget t = LoraTarget.bySlot(s.slot()).orElse(null);
      Weight x = new Weight(s.name(), s.shape(), s.layer(), t);
      if (t != null) {
        // LoraTarget's module names are PEFT's; the core's weight names must agree with them.
        String want = "model.layers." + s.layer() + "." + t.modulePath() + ".weight";
        if (!want.equals(s.name()) || s.shape().length != 2) {
          throw new IllegalStateException(
              "the native core names slot "
                  + s.slot()
                  + " of layer "
                  + s.layer()
                  + " '"
                  + s.name()
                  + "', LoraTarget "
                  + t
                  + " expects '"
                  + want
                  + "'");
        }
        projections[s.layer() * targets.length + t.ordinal()] = x;
      } else if (s.slot() < Lora4jLibrary.LORA4J_SLOT_INPUT_NORM
          || s.slot() > Lora4jLibrary.LORA4J_SLOT_LM_HEAD) {
        throw new IllegalStateException("unknown weight slot " + s.slot() + " of " + s.name());
      }
      w.add(x);
    }
    for (int i = 0; i < projections.length; i++) {
      if (projections[i] == null) {
        throw new IllegalStateException(
            "the native core lists no "
                + targets[i % targets.length]
                + " weight for layer "
                + i / targets.length);
      }
    }
    weights = List.copyOf(w);
  }

  /**
   * The layout of a model of this config.
   *
   * @param c the config
   * @return its frozen weights
   * @throws dev.lora4j.Lora4jException when the native core refuses the config (for example an odd
   *     head_dim, which RoPE cannot rotate), with the core's message
   */
  public static ModelLayout of(MistralConfig c) {
    ModelLayout l = CACHE.get(c);
    if (l == null) {
      l =
          new ModelLayout(
              c, NativeEngine.weightSpecs(NativeEngine.Shape.of(c, c.maxPositionEmbeddings())));
      CACHE.put(c, l);
    }
    return l;
  }

  /**
   * @return every frozen weight, in the core's order
   */
  public List<Weight> weights() {
    return weights;
  }

  /**
   * @return name to shape of every frozen weight, in the core's order (a fresh map)
   */
  public Map<String, long[]> shapes() {
    Map<String, long[]> m = new LinkedHashMap<>();
    for (Weight w : weights) m.put(w.name(), w.shape().clone());
    return m;
  }

  /**
   * @param layer a decoder layer
   * @param target a projection
   * @return that projection's weight
   */
  public Weight projection(int layer, LoraTarget target) {
    return projections[layer * LoraTarget.values().length + target.ordinal()];
  }

  /**
   * @param target a projection
   * @return its input width: columns of its weight and of its lora_A
   */
  public int inFeatures(LoraTarget target) {
    return Math.toIntExact(projection(0, target).shape()[1]);
  }

  /**
   * @param target a projection
   * @return its output width: rows of its weight and of its lora_B
   */
  public int outFeatures(LoraTarget target) {
    return Math.toIntExact(projection(0, target).shape()[0]);
  }
}
