package dev.lora4j.data;

import dev.lora4j.Batch;

/**
 * A batch with what the training loop needs to know about it.
 *
 * @param batch the rows for the engine
 * @param labelTokens label tokens the batch counts in the loss (see {@link Batch#countedTokens});
 *     for normalizing the loss over gradient accumulation
 * @param examples examples in the batch
 * @param epoch the epoch the batch belongs to
 * @param next the data position after this batch: save it with a checkpoint taken after this batch,
 *     resume from it to get the batches that follow
 */
public record DataBatch(
    Batch batch, long labelTokens, int examples, int epoch, DataPosition next) {}
