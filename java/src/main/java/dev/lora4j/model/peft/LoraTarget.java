package dev.lora4j.model.peft;

import static dev.lora4j.nativ.Lora4jLibrary.*;

import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.ModelLayout;
import java.util.Collection;
import java.util.Optional;

/**
 * The linear layers of a Mistral decoder layer that LoRA can adapt. The slots and bits are the
 * constants {@code LORA4J_SLOT_*} and {@code LORA4J_TARGET_*} of {@code native/include/lora4j.h}
 * (through {@code Lora4jLibrary}, which a test holds to the header); the widths are the shapes of
 * the projections the native core defines ({@link ModelLayout}). The module names are PEFT's;
 * {@link ModelLayout} checks them against the core's weight names.
 */
public enum LoraTarget {
  /** Query projection, {@code self_attn.q_proj}: hidden to heads x head_dim. */
  Q_PROJ("q_proj", "self_attn", LORA4J_SLOT_Q, LORA4J_TARGET_Q),
  /** Key projection, {@code self_attn.k_proj}: hidden to kv_heads x head_dim. */
  K_PROJ("k_proj", "self_attn", LORA4J_SLOT_K, LORA4J_TARGET_K),
  /** Value projection, {@code self_attn.v_proj}: hidden to kv_heads x head_dim. */
  V_PROJ("v_proj", "self_attn", LORA4J_SLOT_V, LORA4J_TARGET_V),
  /** Attention output, {@code self_attn.o_proj}: heads x head_dim to hidden. */
  O_PROJ("o_proj", "self_attn", LORA4J_SLOT_O, LORA4J_TARGET_O),
  /** MLP gate, {@code mlp.gate_proj}: hidden to intermediate. */
  GATE_PROJ("gate_proj", "mlp", LORA4J_SLOT_GATE, LORA4J_TARGET_GATE),
  /** MLP up, {@code mlp.up_proj}: hidden to intermediate. */
  UP_PROJ("up_proj", "mlp", LORA4J_SLOT_UP, LORA4J_TARGET_UP),
  /** MLP down, {@code mlp.down_proj}: intermediate to hidden. */
  DOWN_PROJ("down_proj", "mlp", LORA4J_SLOT_DOWN, LORA4J_TARGET_DOWN);

  private final String moduleName;
  private final String block;
  private final int slot;
  private final int bit;

  LoraTarget(String moduleName, String block, int slot, int bit) {
    if (slot != ordinal() || bit != 1 << slot) {
      throw new IllegalStateException(
          moduleName + ": slot " + slot + " and bit " + bit + " do not follow the enum order");
    }
    this.moduleName = moduleName;
    this.block = block;
    this.slot = slot;
    this.bit = bit;
  }

  /**
   * @return the module's name as in PEFT's {@code target_modules}, e.g. {@code "q_proj"}
   */
  public String moduleName() {
    return moduleName;
  }

  /**
   * @return the path inside a decoder layer, e.g. {@code "self_attn.q_proj"}
   */
  public String modulePath() {
    return block + "." + moduleName;
  }

  /**
   * @return the bit of this target in the native target mask ({@code LORA4J_TARGET_*})
   */
  public int bit() {
    return bit;
  }

  /**
   * @return the native weight slot of this projection ({@code LORA4J_SLOT_*})
   */
  public int slot() {
    return slot;
  }

  /**
   * @param model the model
   * @return the layer's input width (columns of the base weight and of lora_A)
   */
  public int inFeatures(MistralConfig model) {
    return ModelLayout.of(model).inFeatures(this);
  }

  /**
   * @param model the model
   * @return the layer's output width (rows of the base weight and of lora_B)
   */
  public int outFeatures(MistralConfig model) {
    return ModelLayout.of(model).outFeatures(this);
  }

  /**
   * @param slot a native weight slot ({@code LORA4J_SLOT_*})
   * @return the projection in that slot, or empty for the slots of the other weights
   */
  public static Optional<LoraTarget> bySlot(int slot) {
    for (LoraTarget t : values()) {
      if (t.slot == slot) return Optional.of(t);
    }
    return Optional.empty();
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
