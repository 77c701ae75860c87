package dev.lora4j.cli;

import dev.lora4j.gguf.GgufExport;
import dev.lora4j.gguf.OllamaModelfile;
import dev.lora4j.io.OutputFile;
import dev.lora4j.io.OutputFolder;
import dev.lora4j.model.peft.LoraAdapter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code export-gguf}: writes a model (merged or not) or an adapter as GGUF for llama.cpp and
 * Ollama.
 */
@Command(
    name = "export-gguf",
    mixinStandardHelpOptions = true,
    description = {
      "Write the model, with --adapter folded in, as one GGUF file for llama.cpp and Ollama;"
          + " or, with --lora, the adapter as a llama.cpp LoRA adapter GGUF for the base model's"
          + " GGUF (--base-gguf, written when it does not exist).",
      "An Ollama Modelfile is written beside the output (NAME.gguf gives NAME.Modelfile): FROM,"
          + " ADAPTER with --lora, TEMPLATE and stop parameters from the chat template.",
      "Outputs are new files (or --overwrite), never an input; each is written under a temporary"
          + " name and renamed when complete.",
      ""
    })
final class ExportGgufCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "DIR",
      description =
          "base model folder (config.json, safetensors, tokenizer.json); never written to")
  Path model;

  @Option(
      names = "--adapter",
      paramLabel = "DIR",
      description =
          "PEFT adapter folder: folded into the weights, or with --lora written as an adapter"
              + " GGUF (default: none, the base model)")
  Path adapter;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "FILE.gguf",
      description = "the GGUF file to write")
  Path output;

  @Option(
      names = "--type",
      paramLabel = "f16|bf16|q8_0|f32",
      description =
          "weight type: f16, bf16, q8_0 (8-bit blocks, about half of f16) or f32 (default: f16;"
              + " with --lora the adapter's factors are f32 unless f16 or bf16 is given, and this"
              + " type is that of a --base-gguf written)")
  String type;

  @Option(
      names = "--lora",
      description =
          "write --adapter as a llama.cpp LoRA adapter GGUF instead of a merged model (default:"
              + " off)")
  boolean lora;

  @Option(
      names = "--base-gguf",
      paramLabel = "FILE.gguf",
      description =
          "with --lora: the base model's GGUF for the Modelfile's FROM; written from --model when"
              + " it does not exist, checked against --model when it does (default: none; needed"
              + " for the Modelfile)")
  Path baseGguf;

  @Option(
      names = "--no-modelfile",
      description = "do not write the Ollama Modelfile (default: write it)")
  boolean noModelfile;

  @Option(names = "--overwrite", description = "replace existing output files (default: refuse)")
  boolean overwrite;

  @Override
  public Integer call() {
    GgufExport.Type t = type == null ? GgufExport.Type.F16 : GgufExport.Type.parse(type);
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("--model folder", model);
    inputs.put("--adapter folder", adapter);
    Path modelfile = noModelfile ? null : OllamaModelfile.besides(output);
    List<String> notes = new ArrayList<>();
    if (!lora) {
      if (baseGguf != null) throw new IllegalArgumentException("--base-gguf goes with --lora");
      OutputFile.checkApart(output, "--output", inputs);
      OutputFile.checkWritable(output, overwrite);
      if (modelfile != null) {
        OutputFile.checkApart(modelfile, "the Modelfile", inputs);
        OutputFile.checkWritable(modelfile, overwrite);
      }
      GgufExport.Result r = GgufExport.writeModel(model, adapter, output, t, overwrite);
      report(r, adapter == null ? "model" : "merged model");
      if (modelfile != null)
        notes.addAll(OllamaModelfile.write(modelfile, output, null, model, overwrite));
    } else {
      if (adapter == null) throw new IllegalArgumentException("--lora needs --adapter DIR");
      if (baseGguf == null && modelfile != null) {
        throw new IllegalArgumentException(
            "--lora needs --base-gguf FILE.gguf, the base model's GGUF that the adapter applies to"
                + " (written from --model when it does not exist; the Modelfile's FROM), or"
                + " --no-modelfile");
      }
      GgufExport.Type adapterType = type == null ? GgufExport.Type.F32 : t;
      if (adapterType == GgufExport.Type.Q8_0) {
        throw new IllegalArgumentException(
            "--type q8_0 does not go with --lora: the adapter's factors are f32, f16 or bf16 (write"
                + " a q8_0 base with a separate export-gguf without --lora)");
      }
      OutputFile.checkApart(output, "--output", inputs);
      OutputFile.checkWritable(output, overwrite);
      boolean writeBase = baseGguf != null && !Files.exists(baseGguf);
      if (baseGguf != null) {
        if (sameFile(baseGguf, output)) {
          throw new IllegalArgumentException("--base-gguf and --output are the same file");
        }
        if (writeBase) OutputFile.checkApart(baseGguf, "--base-gguf", inputs);
        else GgufExport.checkBaseModel(baseGguf, model);
      }
      if (modelfile != null) {
        Map<String, Path> all = new LinkedHashMap<>(inputs);
        all.put("--base-gguf file", writeBase ? null : baseGguf);
        OutputFile.checkApart(modelfile, "the Modelfile", all);
        OutputFile.checkWritable(modelfile, overwrite);
        if (baseGguf != null && sameFile(modelfile, baseGguf)) {
          throw new IllegalArgumentException(
              "--base-gguf "
                  + baseGguf
                  + " is the path of the Modelfile written beside --output: give --base-gguf"
                  + " another path, or pass --no-modelfile");
        }
      }
      // The adapter is read and checked against the model first (cheap); then the base, whose
      // export checks the model folder (tokenizer, weights) and may fail on its own; the adapter
      // file last. So a bad adapter or a bad model folder leaves neither file.
      LoraAdapter checked = GgufExport.checkAdapter(model, adapter, adapterType);
      if (writeBase) {
        GgufExport.Type baseType = type == null ? GgufExport.Type.F16 : t;
        report(GgufExport.writeModel(model, null, baseGguf, baseType, false), "base model");
      }
      GgufExport.Result r =
          GgufExport.writeAdapter(model, adapter, checked, output, adapterType, overwrite);
      report(r, "LoRA adapter");
      if (modelfile != null)
        notes.addAll(OllamaModelfile.write(modelfile, baseGguf, output, model, overwrite));
    }
    if (modelfile != null) System.out.println("Ollama Modelfile written to " + modelfile);
    for (String n : notes) System.err.println("lora4j: warning: " + n);
    return 0;
  }

  private static boolean sameFile(Path a, Path b) {
    return OutputFolder.canonicalPath(a).equals(OutputFolder.canonicalPath(b));
  }

  private static void report(GgufExport.Result r, String what) {
    System.out.printf(
        Locale.ROOT,
        "%s written to %s (%d tensors, %.1f MB)%n",
        what,
        r.file(),
        r.tensors(),
        r.bytes() / 1e6);
  }
}
