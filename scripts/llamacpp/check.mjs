// Runs lora4j's GGUF exports in llama.cpp (node-llama-cpp's prebuilt CPU build) and writes what
// llama.cpp computes, for GgufLlamaCppTest to compare with lora4j:
//   node check.mjs INPUT.json
// INPUT.json: {"out": DIR, "models": [{"name", "gguf", "lora": FILE|null}], "strings": [text],
//              "prompts": [[token ids]], "chats": [[token ids]], "maxNew": N}
// For each model: DIR/NAME.probs.f32 (for every prompt, every position: the next-token
// probabilities over the whole vocabulary, little-endian float32) and an entry of DIR/result.json
// with llama.cpp's tokenization of every string (no BOS, special-token text as plain text), the
// greedy continuation of every chat prompt (until an end-of-generation token or maxNew), the
// special ids and the chat template read from the file.
import fs from "node:fs";
import path from "node:path";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
const result = {llamaCpp: llama.llamaCppRelease, models: {}};

for (const m of input.models) {
    const model = await llama.loadModel({modelPath: m.gguf, gpuLayers: 0, useMmap: true});
    const context = await model.createContext({
        contextSize: 512,
        batchSize: 512,
        sequences: 1,
        // one thread: on a 2-core machine llama.cpp's worker threads contend with node's own and a
        // generated token takes 30 times longer with two
        threads: 1,
        lora: m.lora == null ? undefined : {adapters: [{filePath: m.lora, scale: 1}]}
    });
    const sequence = context.getSequence();
    const vocab = model.tokens;
    const out = {
        bos: vocab.bos,
        eos: vocab.eos,
        chatTemplate: model.fileInfo.metadata?.tokenizer?.chat_template ?? null,
        addBos: model.fileInfo.metadata?.tokenizer?.ggml?.add_bos_token ?? null,
        vocabSize: model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? null,
        tokens: input.strings.map((s) => Array.from(model.tokenize(s, false))),
        generations: [],
        stoppedAtEog: []
    };

    // next-token probabilities at every position of every prompt
    let n = 0;
    for (const p of input.prompts) n += p.length;
    const nVocab = out.vocabSize;
    const probs = new Float32Array(n * nVocab);
    let row = 0;
    for (const p of input.prompts) {
        await sequence.clearHistory();
        const res = await sequence.controlledEvaluate(
            p.map((t) => [t, {generateNext: {probabilities: true}}]));
        for (let i = 0; i < p.length; i++) {
            const map = res[i]?.next?.probabilities;
            if (map == null) throw new Error(`no probabilities for position ${i} of a prompt`);
            const base = (row + i) * nVocab;
            for (const [token, prob] of map) probs[base + token] = prob;
        }
        row += p.length;
    }
    fs.writeFileSync(path.join(input.out, `${m.name}.probs.f32`), Buffer.from(probs.buffer));

    // greedy generation from each chat prompt
    for (const p of input.chats) {
        await sequence.clearHistory();
        const gen = [];
        const first = await sequence.controlledEvaluate(
            p.map((t, i) => (i === p.length - 1 ? [t, {generateNext: {token: true}}] : t)));
        let next = first[p.length - 1].next.token;
        let stopped = false;
        while (gen.length < input.maxNew) {
            gen.push(next);
            if (model.isEogToken(next)) {
                stopped = true;
                break;
            }
            const r = await sequence.controlledEvaluate([[next, {generateNext: {token: true}}]]);
            next = r[0].next.token;
        }
        out.generations.push(gen);
        out.stoppedAtEog.push(stopped);
    }
    result.models[m.name] = out;
    await context.dispose();
    await model.dispose();
}
fs.writeFileSync(path.join(input.out, "result.json"), JSON.stringify(result));
await llama.dispose();
