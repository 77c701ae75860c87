package dev.lora4j;

/**
 * What one optimizer step did.
 *
 * @param loss mean loss over the step's label tokens, before the update
 * @param gradNorm global gradient norm before clipping
 * @param applied false when the update was skipped (gradients not finite)
 * @param step optimizer steps applied so far
 * @param tokens label tokens the loss was averaged over
 */
public record StepResult(double loss, double gradNorm, boolean applied, long step, long tokens) {}
