package dev.lora4j.cli;

import dev.lora4j.Device;
import dev.lora4j.MistralModel;
import dev.lora4j.Quantization;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by the commands that load a model. */
final class ModelOptions {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "DIR",
      description = "Hugging Face model folder (config.json, safetensors, tokenizer.json)")
  Path model;

  @Option(
      names = "--device",
      defaultValue = "auto",
      paramLabel = "cpu|cuda|cuda:N|auto",
      description = "where to run (default: ${DEFAULT-VALUE}, the GPU when one is usable)")
  String device;

  @Option(
      names = "--threads",
      defaultValue = "0",
      paramLabel = "N",
      description = "CPU threads (default: ${DEFAULT-VALUE}, all cores)")
  int threads;

  @Option(
      names = "--recompute",
      defaultValue = "none",
      paramLabel = "none|layer",
      description =
          "activation recompute (gradient checkpointing): none or per layer (default:"
              + " ${DEFAULT-VALUE})")
  String recompute;

  @Option(
      names = "--max-positions",
      defaultValue = "0",
      paramLabel = "N",
      description =
          "longest sequence the engine is sized for (default: ${DEFAULT-VALUE},"
              + " min(max_position_embeddings, 4096))")
  int maxPositions;

  @Option(
      names = "--load-in-4bit",
      description =
          "hold the projection weights in 4-bit NF4 as bitsandbytes does (QLoRA; blocks of 64,"
              + " double-quantized absmax); a checkpoint saved by bitsandbytes in 4 bits loads in 4"
              + " bits without it (default: off)")
  boolean loadIn4bit;

  @Option(
      names = "--verbose",
      description =
          "say more: why --device auto chose the CPU, the library's detail messages (default: off)")
  boolean verbose;

  /** The device: as typed, or for auto the one chosen, said in one line on standard error. */
  Device device() {
    return device(device);
  }

  Device device(String typed) {
    ConsoleLog.verbose(verbose);
    if (!typed.trim().equalsIgnoreCase("auto")) return Device.parse(typed);
    String why = Device.cudaUnavailableReason();
    if (why == null) {
      System.err.println("lora4j: device cuda:0 (--device auto found a usable GPU)");
      return Device.cuda(0);
    }
    System.err.println(
        "lora4j: device cpu (--device auto found no usable CUDA GPU"
            + (verbose ? ": " + Main.oneLine(why) : "; --verbose says why")
            + ")");
    return Device.cpu();
  }

  MistralModel load() {
    return load(device);
  }

  /** The model on the device typed (cpu, cuda, cuda:N, auto). */
  MistralModel load(String typedDevice) {
    MistralModel.Recompute r =
        switch (recompute.toLowerCase(java.util.Locale.ROOT)) {
          case "none" -> MistralModel.Recompute.NONE;
          case "layer" -> MistralModel.Recompute.LAYER;
          default -> throw new IllegalArgumentException("--recompute must be none or layer");
        };
    return MistralModel.load(
        model,
        device(typedDevice),
        MistralModel.LoadOptions.defaults()
            .withThreads(threads)
            .withRecompute(r)
            .withMaxSeqLength(maxPositions)
            .withQuantization(loadIn4bit ? Quantization.nf4() : Quantization.none()));
  }
}
