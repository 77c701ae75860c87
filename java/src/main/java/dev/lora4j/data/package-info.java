/**
 * Training data: JSONL files streamed line by line, turned into token ids and labels, shuffled,
 * split, and collated into {@link dev.lora4j.Batch}es on a background thread.
 *
 * <h2>Data flow</h2>
 *
 * <pre>
 * JSONL line --(DataFormat, detected or set)--&gt; text / prompt+completion / Alpaca prompt /
 * chat messages / ids --(TextEncoder literal, ChatEncoder)--&gt; TokenizedExample
 * --(truncate or drop at maxSeqLength; skip if no label counts)--&gt; ShuffleBuffer(seed + epoch)
 * --(pad, or first-fit packing)--&gt; DataBatch (Batch, label tokens, DataPosition after it)
 * --(BatchIterator: background thread, queue of 2)--&gt; training loop
 * </pre>
 *
 * <h2>Decisions (compared with Hugging Face TRL)</h2>
 *
 * <ul>
 *   <li>Prompt/completion and Alpaca lines are tokenized as TRL's {@code SFTTrainer} does: the text
 *       {@code prompt + completion} is tokenized as a whole, the prompt alone is tokenized too, and
 *       as many leading positions as the prompt alone has tokens are masked. An eos id is appended
 *       to every text, completion, Alpaca output and assistant turn. TRL appends the eos
 *       <em>text</em> unless the data already ends with it; lora4j tokenizes data literally, so
 *       {@code "</s>"} written in data is never an eos and the eos id is always appended.
 *   <li>{@link dev.lora4j.data.DataConfig#completionsOnly()} defaults to true for every format,
 *       like TRL's {@code completion_only_loss} for prompt/completion data. TRL's default for
 *       conversations ({@code assistant_only_loss=False}) trains on every token: set
 *       completionsOnly to false for that behaviour.
 *   <li>Truncation keeps the first maxSeqLength tokens (TRL's default); with dropOverlong such
 *       examples are dropped instead. Both are counted in {@link dev.lora4j.data.DataStats}.
 *   <li>Padded batches are right-padded to the longest example of the batch. Packed rows are
 *       exactly maxSeqLength long; positions restart per example, segments separate examples, and
 *       the label of each packed example's first token is -100 (as transformers' {@code
 *       DataCollatorWithFlattening} does), so no example is predicted from another.
 *   <li>Packing is first-fit in stream order within a batch (TRL's "bfd" sorts by length over a
 *       whole dataset, which a stream cannot do); examples are never split across rows.
 *   <li>Shuffling uses a bounded buffer (like {@code IterableDataset.shuffle}), not a full
 *       permutation: memory stays bounded on any file size.
 *   <li>The validation split is a seeded hash of the line number (about the requested fraction,
 *       scattered through the file); see {@link dev.lora4j.data.JsonlDataset}.
 *   <li>Resumption replays the epoch's deterministic stream and skips the examples already consumed
 *       ({@link dev.lora4j.data.DataPosition}): exact, at the cost of re-tokenizing the skipped
 *       part of the epoch once.
 * </ul>
 */
package dev.lora4j.data;
