package dev.lora4j.examples;

import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.GenerationConfig;
import dev.lora4j.Generator;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.Schedule;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingResult;
import java.nio.file.Path;

/**
 * Fine-tunes a Mistral model folder on a chat JSONL file and asks the result a question.
 *
 * <pre>
 * mvn -B -ntp -DskipTests package
 * java -cp java/target/lora4j-0.1.0-SNAPSHOT-cli.jar:examples/target/classes \
 *     dev.lora4j.examples.FineTune examples/models/tiny-mistral examples/data/sample-chat.jsonl runs/example
 * </pre>
 */
public final class FineTune {
  public static void main(String[] args) {
    Path model = Path.of(args.length > 0 ? args[0] : "examples/models/tiny-mistral");
    Path data = Path.of(args.length > 1 ? args[1] : "examples/data/sample-chat.jsonl");
    Path out = Path.of(args.length > 2 ? args[2] : "runs/example");
    try (MistralModel base = MistralModel.load(model, Device.auto())) {
      TrainingConfig cfg =
          TrainingConfig.builder()
              .outputDir(out)
              .epochs(4)
              .batchSize(8)
              .learningRate(5e-3)
              .schedule(Schedule.cosine().warmupSteps(5))
              .lora(LoraConfig.builder().rank(16).alpha(32).allLinear().build())
              .trainOnCompletionsOnly(true)
              .validationFraction(0.1)
              .overwriteOutput(true) // each run of the example replaces the previous one
              .build();
      TrainingResult result = LoraTrainer.fit(base, Dataset.jsonl(data), cfg);
      System.out.printf(
          "validation loss %.3f (base model %.3f)%n",
          result.finalEvaluation().loss(), result.finalEvaluation().baseLoss());
      Generator g = new Generator(base);
      GenerationConfig gen = GenerationConfig.greedy().withMaxNewTokens(24);
      int[] answer = g.generate(g.chatPromptIds("What is 12 + 30?", gen), gen, null);
      System.out.println("answer: " + base.tokenizer().decode(answer, true));
    }
  }
}
