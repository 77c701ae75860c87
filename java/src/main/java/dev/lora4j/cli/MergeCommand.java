package dev.lora4j.cli;

import dev.lora4j.model.MergedExport;
import dev.lora4j.model.peft.LoraAdapter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code merge}: folds a PEFT adapter into the model's weights and writes a model folder. */
@Command(
    name = "merge",
    mixinStandardHelpOptions = true,
    description = {
      "Fold a LoRA adapter into the weights: writes a Hugging Face model folder sharded like",
      "the input (same dtype), with config and tokenizer files copied."
    })
final class MergeCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, paramLabel = "DIR", description = "base model folder")
  Path model;

  @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "PEFT adapter folder")
  Path adapter;

  @Option(names = "--output", required = true, paramLabel = "DIR", description = "merged model folder")
  Path output;

  @Override
  public Integer call() {
    MergedExport.write(model, LoraAdapter.read(adapter), output);
    System.out.println("merged model written to " + output);
    return 0;
  }
}
