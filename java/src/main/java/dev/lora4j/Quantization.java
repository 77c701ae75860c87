package dev.lora4j;

/**
 * How the frozen projection weights are held: 16-bit as stored ({@link #none()}), or 4-bit NF4 as
 * bitsandbytes stores it ({@link #nf4()}, QLoRA). Embeddings, norms and the LM head always stay
 * 16-bit, as bitsandbytes leaves them.
 *
 * <p>A checkpoint saved by bitsandbytes (a {@code quantization_config} in config.json) loads in 4
 * bits whatever is asked: its weights exist only in that form. A 16-bit checkpoint is quantized
 * while it loads when NF4 is asked.
 *
 * @param kind NONE or NF4
 * @param blocksize weights per absmax (bitsandbytes: 64)
 * @param doubleQuant whether the absmax values are quantized again (8-bit, blocks of 256), as
 *     bitsandbytes' {@code bnb_4bit_use_double_quant=True} does (QLoRA's default)
 */
public record Quantization(Kind kind, int blocksize, boolean doubleQuant) {
  /** The kinds of weight storage. */
  public enum Kind {
    /** The checkpoint's 16-bit weights. */
    NONE,
    /** 4-bit NormalFloat, bitsandbytes' layout. */
    NF4
  }

  public Quantization {
    if (kind == null) throw new IllegalArgumentException("kind is null");
    if (kind == Kind.NF4 && !dev.lora4j.model.nf4.Nf4.BNB_BLOCKSIZES.contains(blocksize)) {
      throw new IllegalArgumentException(
          "blocksize must be one bitsandbytes uses "
              + dev.lora4j.model.nf4.Nf4.BNB_BLOCKSIZES
              + ", got "
              + blocksize);
    }
  }

  /** The weights as stored. */
  public static Quantization none() {
    return new Quantization(Kind.NONE, 0, false);
  }

  /** NF4 in blocks of 64 with double quantization: QLoRA and bitsandbytes' usual settings. */
  public static Quantization nf4() {
    return new Quantization(Kind.NF4, 64, true);
  }

  /** The same with double quantization on or off. */
  public Quantization withDoubleQuant(boolean on) {
    return new Quantization(kind, blocksize, on);
  }

  /** The same with another block size (even, >= 2). */
  public Quantization withBlocksize(int n) {
    return new Quantization(kind, n, doubleQuant);
  }

  /**
   * @return whether the weights are 4-bit
   */
  public boolean isNf4() {
    return kind == Kind.NF4;
  }
}
