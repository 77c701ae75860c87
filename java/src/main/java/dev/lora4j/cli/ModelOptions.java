package dev.lora4j.cli;

import dev.lora4j.Device;
import dev.lora4j.MistralModel;
import dev.lora4j.Quantization;
import dev.lora4j.model.MistralConfig;
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
      paramLabel = "none|layer|selective|attention",
      description =
          "activation recompute (gradient checkpointing): none, per layer, selective (per"
              + " layer, keeping each layer's attention output: faster on long rows, more"
              + " memory), or attention (per layer, keeping the attention's q, k, v and output:"
              + " only the norms, o projection and MLP are re-run; meant with"
              + " --offload-checkpoints) (default: ${DEFAULT-VALUE})")
  String recompute;

  @Option(
      names = "--offload-checkpoints",
      description =
          "with --recompute layer, selective or attention on the GPU: keep what the backward"
              + " needs of each layer in pinned host memory instead of GPU memory (copied while"
              + " the next layers compute; the same result bit for bit). Frees about 2 x rows x"
              + " hidden bytes per layer of GPU memory (with selective and attention also the"
              + " attention output, with attention also q, k and v) and takes as much host"
              + " memory (default: off)")
  boolean offloadCheckpoints;

  @Option(
      names = "--max-positions",
      defaultValue = "0",
      paramLabel = "N",
      description =
          "longest sequence the engine is sized for (default: ${DEFAULT-VALUE}: the command's"
              + " --max-seq-length, at least min(max_position_embeddings, 4096) and at most"
              + " max_position_embeddings)")
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

  /** The engine's positions: --max-positions, else what rows of rowLength need (0: default). */
  int positions(int rowLength) {
    if (maxPositions < 0) {
      throw new IllegalArgumentException(
          "--max-positions must be >= 1, or 0 for the default, got " + maxPositions);
    }
    if (maxPositions > 0 || rowLength <= 4096) return maxPositions;
    int modelMax = MistralConfig.load(model.resolve("config.json")).maxPositionEmbeddings();
    return Math.max(Math.min(rowLength, modelMax), Math.min(modelMax, 4096));
  }

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
    return load(typedDevice, 0);
  }

  /**
   * Refuses a --threads value below 0, or above 8 threads a core: the CPU engine starts that many
   * threads, and tens of thousands exhaust the host's (a few per core is the most that helps).
   */
  static void checkThreads(int threads, int cores) {
    if (threads < 0 || threads > 8L * cores) {
      throw new IllegalArgumentException(
          "--threads must be 0 (all cores) to "
              + 8L * cores
              + " (8 a core; this machine has "
              + cores
              + "), got "
              + threads);
    }
  }

  /** The --recompute value: none, layer or selective (any case). */
  static MistralModel.Recompute recomputeOf(String value) {
    return switch (value.toLowerCase(java.util.Locale.ROOT)) {
      case "none" -> MistralModel.Recompute.NONE;
      case "layer" -> MistralModel.Recompute.LAYER;
      case "selective" -> MistralModel.Recompute.SELECTIVE;
      case "attention" -> MistralModel.Recompute.ATTENTION;
      default ->
          throw new IllegalArgumentException(
              "--recompute must be none, layer, selective or attention, got '" + value + "'");
    };
  }

  /**
   * The model on the device typed, its engine sized for rows of {@code rowLength} tokens when
   * --max-positions is not given: a --max-seq-length longer than the default engine (4096) is
   * honoured up to the model's max_position_embeddings instead of cutting the rows to 4096.
   */
  MistralModel load(String typedDevice, int rowLength) {
    checkThreads(threads, Runtime.getRuntime().availableProcessors());
    MistralModel.Recompute r = recomputeOf(recompute);
    if (offloadCheckpoints && r == MistralModel.Recompute.NONE) {
      throw new IllegalArgumentException(
          "--offload-checkpoints needs --recompute layer, selective or attention: without"
              + " recompute the backward keeps every activation on the device and nothing is"
              + " offloaded");
    }
    Device d = device(typedDevice);
    if (offloadCheckpoints && !d.isCuda()) {
      System.err.println(
          "lora4j: --offload-checkpoints has no effect on the CPU (what recompute keeps is"
              + " already in host memory)");
    }
    return MistralModel.load(
        model,
        d,
        MistralModel.LoadOptions.defaults()
            .withThreads(threads)
            .withRecompute(r)
            .withOffloadCheckpoints(offloadCheckpoints)
            .withMaxSeqLength(positions(rowLength))
            .withQuantization(loadIn4bit ? Quantization.nf4() : Quantization.none()));
  }
}
