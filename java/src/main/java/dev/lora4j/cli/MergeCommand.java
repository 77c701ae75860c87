package dev.lora4j.cli;

import dev.lora4j.io.OutputFolder;
import dev.lora4j.model.MergedExport;
import dev.lora4j.model.peft.LoraAdapter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code merge}: folds a PEFT adapter into the model's weights and writes a model folder. */
@Command(
    name = "merge",
    mixinStandardHelpOptions = true,
    description = {
      "Fold a LoRA adapter into the weights: writes a Hugging Face model folder sharded like the"
          + " input (same dtype), with config and tokenizer files copied.",
      "The output folder must be new or empty (or --overwrite) and apart from --model and"
          + " --adapter; it is written under a temporary name and renamed when complete.",
      ""
    })
final class MergeCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "DIR",
      description = "base model folder (config.json and safetensors); never written to")
  Path model;

  @Option(
      names = "--adapter",
      required = true,
      paramLabel = "DIR",
      description = "PEFT adapter folder (adapter_config.json, adapter_model.safetensors)")
  Path adapter;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "DIR",
      description = "merged model folder to create: new or empty, apart from the inputs")
  Path output;

  @Option(
      names = "--overwrite",
      description = "replace the contents of a non-empty --output folder (default: refuse)")
  boolean overwrite;

  @Override
  public Integer call() {
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("--model folder", model);
    inputs.put("--adapter folder", adapter);
    OutputFolder.checkApart(output, "--output", inputs);
    MergedExport.write(model, LoraAdapter.read(adapter), output, overwrite);
    System.out.println("merged model written to " + output);
    return 0;
  }
}
