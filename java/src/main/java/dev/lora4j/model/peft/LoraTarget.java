package dev.lora4j.model.peft;

import dev.lora4j.model.MistralConfig;
import java.util.Collection;
import java.util.Optional;

/**
 * The linear layers of a Mistral decoder layer that LoRA can adapt. The bit values are those of
 * {@code LORA4J_TARGET_*} in {@code native/include/lora4j.h}.
 */
public enum LoraTarget {
  /** Query projection, {@code self_attn.q_proj}: hidden to heads x head_dim. */
  Q_PROJ("q_proj", "self_attn", 1),
  /** Key projection, {@code self_attn.k_proj}: hidden to kv_heads x head_dim. */
  K_PROJ("k_proj", "self_attn", 2),
  /** Value projection, {@code self_attn.v_proj}: hidden to kv_heads x head_dim. */
  V_PROJ("v_proj", "self_attn", 4),
  /** Attention output, {@code self_attn.o_proj}: heads x head_dim to hidden. */
  O_PROJ("o_proj", "self_attn", 8),
  /** MLP gate, {@code mlp.gate_proj}: hidden to intermediate. */
  GATE_PROJ("gate_proj", "mlp", 16),
  /** MLP up, {@code mlp.up_proj}: hidden to intermediate. */
  UP_PROJ("up_proj", "mlp", 32),
  /** MLP down, {@code mlp.down_proj}: intermediate to hidden. */
  DOWN_PROJ("down_proj", "mlp", 64);

  private final String moduleName;
  private final String block;
  private final int bit;

  LoraTarget(String moduleName, String block, int bit) {
    this.moduleName = moduleName;
    this.block = block;
    this.bit = bit;
  }

  /** @return the module's name as in PEFT's {@code target_modules}, e.g. {@code "q_proj"} */
  public String moduleName() {
    return moduleName;
  }

  /** @return the path inside a decoder layer, e.g. {@code "self_attn.q_proj"} */
  public String modulePath() {
    return block + "." + moduleName;
  }

  /** @return the bit of this target in the native target mask */
  public int bit() {
    return bit;
  }

  /**
   * @param model the model
   * @return the layer's input width (columns of the base weight and of lora_A)
   */
  public int inFeatures(MistralConfig model) {
    switch (this) {
      case O_PROJ:
        return model.qDim();
      case DOWN_PROJ:
        return model.intermediateSize();
      default:
        return model.hiddenSize();
    }
  }

  /**
   * @param model the model
   * @return the layer's output width (rows of the base weight and of lora_B)
   */
  public int outFeatures(MistralConfig model) {
    switch (this) {
      case Q_PROJ:
        return model.qDim();
      case K_PROJ:
      case V_PROJ:
        return model.kvDim();
      case GATE_PROJ:
      case UP_PROJ:
        return model.intermediateSize();
      default:
        return model.hiddenSize();
    }
  }

  /**
   * @param moduleName a name such as {@code "q_proj"}
   * @return the target, or empty when the name is not one of the seven
   */
  public static Optional<LoraTarget> byModuleName(String moduleName) {
    for (LoraTarget t : values()) {
      if (t.moduleName.equals(moduleName)) return Optional.of(t);
    }
    return Optional.empty();
  }

  /**
   * @param targets some targets
   * @return the OR of their bits, as the native core takes them
   */
  public static int mask(Collection<LoraTarget> targets) {
    int m = 0;
    for (LoraTarget t : targets) m |= t.bit;
    return m;
  }
}
