package dev.lora4j.cli;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The command line's names for the library's settings. Library messages name the Java setting
 * (learningRate, batchSize, overwriteOutput(true)); a command-line user typed a flag (--lr,
 * --batch-size, --overwrite), so the command line rewrites the message before printing it.
 */
final class Flags {
  private Flags() {}

  /** Java name (as it appears in library messages) to flag; longer names first. */
  private static final Map<String, String> NAMES = new LinkedHashMap<>();

  static {
    NAMES.put("overwriteOutput(true)", "--overwrite");
    NAMES.put("pass overwrite = true", "use --overwrite");
    NAMES.put("resume(true)", "--resume");
    NAMES.put("TrainingConfig's skipInvalidLines(true)", "--skip-invalid");
    NAMES.put("trainData().describe()", "the training data report");
    NAMES.put("groupByLength(true)", "--group-by-length");
    NAMES.put("packing(true)", "--packing");
    NAMES.put("DataConfig.format", "--format");
    NAMES.put("dataFormat", "--format");
    NAMES.put("learningRate", "--lr");
    NAMES.put("lr must", "--lr must");
    NAMES.put("batchSize", "--batch-size");
    NAMES.put("gradientAccumulation", "--grad-accum");
    NAMES.put("maxSeqLength", "--max-seq-length");
    NAMES.put("validationFraction", "--val-fraction");
    NAMES.put("validationFile", "--eval-data");
    NAMES.put("forgettingWarn", "--forgetting-warn");
    NAMES.put("forgettingData", "--forgetting-data");
    NAMES.put("loggingSteps", "--log-steps");
    NAMES.put("saveTotalLimit", "--save-limit");
    NAMES.put("saveSteps", "--save-steps");
    NAMES.put("evalSteps", "--eval-steps");
    NAMES.put("earlyStoppingPatience", "--early-stopping-patience");
    NAMES.put("earlyStoppingThreshold", "--early-stopping-threshold");
    NAMES.put("maxSteps", "--steps");
    NAMES.put("epochs", "--epochs");
    NAMES.put("shuffleBuffer", "--shuffle-buffer");
    NAMES.put("trainOnCompletionsOnly", "--completions-only");
    NAMES.put("skipInvalidLines", "--skip-invalid");
    NAMES.put("maxGradNorm", "--max-grad-norm");
    NAMES.put("weight decay must", "--weight-decay must");
    NAMES.put("beta1 must", "--adam-beta1 must");
    NAMES.put("beta2 must", "--adam-beta2 must");
    NAMES.put("eps must", "--adam-eps must");
    NAMES.put("LoRA rank must", "--rank must");
    NAMES.put("LoRA alpha must", "--alpha must");
    NAMES.put("warmup steps must", "--warmup-steps must");
    NAMES.put("guard loss factor", "--guard-loss-factor");
    NAMES.put("guard gradient-norm factor", "--guard-grad-factor");
    NAMES.put("maxNewTokens", "--max-new-tokens");
    NAMES.put("temperature must", "--temperature must");
    NAMES.put("topK", "--top-k");
    NAMES.put("topP", "--top-p");
    NAMES.put("initAdapter", "--adapter");
    NAMES.put("aggregation", "--aggregation");
    NAMES.put("injectFaults", "--inject-fault");
  }

  private static final Pattern ANY;

  static {
    StringBuilder sb = new StringBuilder("(?<![-\\w./])(");
    boolean first = true;
    for (String k : NAMES.keySet()) {
      if (!first) sb.append('|');
      sb.append(Pattern.quote(k));
      first = false;
    }
    ANY = Pattern.compile(sb.append(")(?![\\w(/])").toString());
  }

  /** The message with every Java setting name replaced by its flag. */
  static String translate(String message) {
    if (message == null) return null;
    Matcher m = ANY.matcher(message);
    StringBuilder sb = new StringBuilder();
    while (m.find()) m.appendReplacement(sb, Matcher.quoteReplacement(NAMES.get(m.group(1))));
    m.appendTail(sb);
    return sb.toString();
  }
}
