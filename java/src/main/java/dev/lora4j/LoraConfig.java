package dev.lora4j;

import dev.lora4j.model.peft.LoraTarget;
import java.util.Collection;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * The adapter to train: rank, alpha, the projections it targets, rsLoRA. Defaults follow PEFT: r 8,
 * alpha 8, q_proj and v_proj (PEFT's default targets for Mistral).
 */
public record LoraConfig(int rank, double alpha, Set<LoraTarget> targets, boolean rslora) {
  public LoraConfig {
    if (rank <= 0) throw new IllegalArgumentException("LoRA rank must be > 0: " + rank);
    if (!(alpha > 0) || Double.isInfinite(alpha))
      throw new IllegalArgumentException("LoRA alpha must be a finite number > 0: " + alpha);
    if (targets == null || targets.isEmpty()) {
      throw new IllegalArgumentException("LoRA needs at least one target module");
    }
    targets = Set.copyOf(EnumSet.copyOf(targets));
  }

  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  public double scale() {
    return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Parses "q_proj,v_proj" or "all-linear". */
  public static Set<LoraTarget> parseTargets(String s) {
    String v = s.trim().toLowerCase(Locale.ROOT);
    if (v.equals("all-linear") || v.equals("all_linear") || v.equals("all")) {
      return EnumSet.allOf(LoraTarget.class);
    }
    EnumSet<LoraTarget> out = EnumSet.noneOf(LoraTarget.class);
    for (String part : v.split(",")) {
      String p = part.trim();
      if (p.isEmpty()) continue;
      LoraTarget found = null;
      for (LoraTarget t : LoraTarget.values()) {
        if (t.moduleName().equals(p) || t.moduleName().equals(p + "_proj")) found = t;
      }
      if (found == null) {
        throw new IllegalArgumentException(
            "unknown LoRA target '"
                + p
                + "': use q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all-linear");
      }
      out.add(found);
    }
    return out;
  }

  /** Builder with PEFT's defaults. */
  public static final class Builder {
    private int rank = 8;
    private double alpha = 8;
    private Set<LoraTarget> targets = EnumSet.of(LoraTarget.Q_PROJ, LoraTarget.V_PROJ);
    private boolean rslora;

    public Builder rank(int r) {
      this.rank = r;
      return this;
    }

    public Builder alpha(double a) {
      this.alpha = a;
      return this;
    }

    public Builder targets(Collection<LoraTarget> t) {
      this.targets = EnumSet.copyOf(t);
      return this;
    }

    public Builder targets(LoraTarget... t) {
      this.targets = EnumSet.copyOf(java.util.List.of(t));
      return this;
    }

    /** "q_proj,v_proj" or "all-linear". */
    public Builder targets(String spec) {
      this.targets = parseTargets(spec);
      return this;
    }

    public Builder allLinear() {
      this.targets = EnumSet.allOf(LoraTarget.class);
      return this;
    }

    public Builder rslora(boolean on) {
      this.rslora = on;
      return this;
    }

    public LoraConfig build() {
      return new LoraConfig(rank, alpha, targets, rslora);
    }
  }
}
