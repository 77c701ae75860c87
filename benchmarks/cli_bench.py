#!/usr/bin/env python3
"""The user's path on the GPU: `lora4j train` on a random Mistral-7B-shaped folder (the reference
stack's shapes: benchmarks/reference/mistral-7b-bench-config.json) with pre-tokenized rows, in the
reference stack's four settings. Prints one JSON line per setting with the steady tokens/s read
from the run's metrics.jsonl (median over the steps after the first two) and the trainer's own
time breakdown. Run by scripts/gpu/run.sh (STEPS=cli), which then compares it with bench_cuda and
the reference stack measured in the same call (benchmarks/compare.py).

Usage: cli_bench.py JAVA CLI_JAR MODEL_DIR WORK_DIR [settings]"""
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

java, jar, model, work = sys.argv[1:5]
only = sys.argv[5] if len(sys.argv) > 5 else "all"
SETTINGS = [(4, 2048, False), (4, 2048, True), (1, 8192, True), (8, 4096, True)]
STEPS = 8


def rows(path, seq, count, vocab=32000):
    if os.path.exists(path):
        return
    rng = random.Random(seq)
    with open(path, "w") as f:
        for _ in range(count):
            f.write(json.dumps({"input_ids": [rng.randrange(3, vocab) for _ in range(seq)]}) + "\n")


for bs, seq, gc in SETTINGS:
    name = f"{bs}x{seq}{'-recompute' if gc else ''}"
    if only != "all" and name not in only.split(","):
        continue
    data = os.path.join(work, f"rows-{seq}.jsonl")
    rows(data, seq, bs * (STEPS + 1))
    out = os.path.join(work, "run-" + name)
    subprocess.run(["rm", "-rf", out])
    extra = os.environ.get("CLI_JAVA_OPTS", "").split()
    cmd = [java, "--enable-native-access=ALL-UNNAMED", "-Xmx16g"] + extra + ["-jar", jar, "train",
           "--model", model, "--data", data, "--output", out, "--device", "cuda",
           "--rank", "16", "--alpha", "16", "--targets", "all-linear",
           "--batch-size", str(bs), "--max-seq-length", str(seq), "--steps", str(STEPS),
           "--lr", "1e-4", "--log-steps", "1", "--warmup-steps", "0"]
    if gc:
        cmd += ["--recompute", "layer"]
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t
    log = p.stdout + p.stderr
    with open(os.path.join(work, f"cli-{name}.log"), "w") as f:
        f.write(" ".join(cmd) + "\n" + log)
    r = {"bench": "cli_train", "B": bs, "S": seq, "recompute": int(gc), "exit": p.returncode,
         "wall_s": round(wall, 1)}
    try:
        steps = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
        tps = [s["tokens_per_second"] for s in steps
               if s.get("type") == "step" and "tokens_per_second" in s and s.get("step", 0) > 2]
        r["tokens_per_s"] = round(statistics.median(tps)) if tps else None
        mem = [s.get("memory_bytes") for s in steps if s.get("type") == "step"]
        mem = [m for m in mem if m]
        if mem:
            r["memory_gib"] = round(max(mem) / 2**30, 2)
    except (OSError, ValueError, KeyError) as e:
        r["error"] = str(e)
    m = re.search(r"time per optimizer step.*", log)
    if m:
        r["breakdown"] = m.group(0)
    if p.returncode != 0:
        r["tail"] = log[-600:]
    print(json.dumps(r), flush=True)
