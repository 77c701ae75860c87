package dev.lora4j.data;

/**
 * The prompt of the Stanford Alpaca data format, character for character as in the Alpaca
 * repository ({@code PROMPT_DICT} in {@code train.py}).
 *
 * <p>With a non-empty input:
 *
 * <pre>
 * Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n
 * \n
 * ### Instruction:\n
 * {instruction}\n
 * \n
 * ### Input:\n
 * {input}\n
 * \n
 * ### Response:\n
 * </pre>
 *
 * <p>With the input missing, null or empty:
 *
 * <pre>
 * Below is an instruction that describes a task. Write a response that appropriately completes the request.\n
 * \n
 * ### Instruction:\n
 * {instruction}\n
 * \n
 * ### Response:\n
 * </pre>
 *
 * ({@code \n} is one newline; the prompt ends with the newline after "### Response:"). The output
 * follows directly, then the end-of-sequence token.
 */
public final class AlpacaTemplate {
  /** The header when the example has an input. */
  public static final String WITH_INPUT =
      "Below is an instruction that describes a task, paired with an input that provides further"
          + " context. Write a response that appropriately completes the request.\n\n";

  /** The header when the example has no input. */
  public static final String WITHOUT_INPUT =
      "Below is an instruction that describes a task. Write a response that appropriately"
          + " completes the request.\n\n";

  private AlpacaTemplate() {}

  /** The prompt for an instruction and an optional input (null or empty: none). */
  public static String prompt(String instruction, String input) {
    if (input == null || input.isEmpty()) {
      return WITHOUT_INPUT + "### Instruction:\n" + instruction + "\n\n### Response:\n";
    }
    return WITH_INPUT
        + "### Instruction:\n"
        + instruction
        + "\n\n### Input:\n"
        + input
        + "\n\n### Response:\n";
  }
}
