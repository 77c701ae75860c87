#!/usr/bin/env python3
"""The user's path on the GPU: `lora4j train` on a random Mistral-7B-shaped folder (the reference
stack's shapes: benchmarks/reference/mistral-7b-bench-config.json) with pre-tokenized rows, in the
reference stack's four settings. Prints one JSON line per setting with the steady tokens/s read
from the run's metrics.jsonl (median over the steps after the first two) and the trainer's own
time breakdown. Run by scripts/gpu/run.sh (STEPS=cli), which then compares it with bench_cuda and
the reference stack measured in the same call (benchmarks/compare.py).

settings: "all" (the four above), "qlora" (QLoRA, issue 15: 1 x 2048 and 4 x 2048 with recompute,
each with --load-in-4bit and in bf16, in the same call; STEPS=qlora), or names joined by commas
("4x2048-recompute", "1x2048-recompute-4bit", ...). Every line also carries the engine's peak
(the trainer's "peak memory of the engine" line) and nvidia-smi's peak for the process, sampled
every 0.2 s (the engine's allocations plus the CUDA context and library handles), and GPU 0's
peak less its use before the run (the same where nvidia-smi cannot see the process's pid).

Usage: cli_bench.py JAVA CLI_JAR MODEL_DIR WORK_DIR [settings]"""
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time

java, jar, model, work = sys.argv[1:5]
only = sys.argv[5] if len(sys.argv) > 5 else "all"
# (batch, seq, recompute, 4-bit base)
SETTINGS = [(4, 2048, False, False), (4, 2048, True, False), (1, 8192, True, False),
            (8, 4096, True, False)]
QLORA = [(1, 2048, True, False), (1, 2048, True, True), (4, 2048, True, False), (4, 2048, True, True)]
STEPS = 8


def smi(args):
    return subprocess.run(["nvidia-smi"] + args + ["--format=csv,noheader,nounits"],
                          capture_output=True, text=True, timeout=10).stdout


def gpu0_used_mib():
    """Memory in use on GPU 0 (the runs' cuda:0) by every process, MiB; None when unknown."""
    try:
        v = smi(["-i", "0", "--query-gpu=memory.used"]).strip()
        return int(v) if v.isdigit() else None
    except (OSError, subprocess.SubprocessError):
        return None


def smi_peak(pid, stop, out):
    """The most memory nvidia-smi reports for process pid until stop is set (MiB), and the most
    in use on GPU 0 (where a container hides the process's pid from nvidia-smi)."""
    peak, gpu = 0, 0
    while not stop.is_set():
        try:
            for line in smi(["--query-compute-apps=pid,used_memory"]).splitlines():
                f = [x.strip() for x in line.split(",")]
                if len(f) == 2 and f[0] == str(pid) and f[1].isdigit():
                    peak = max(peak, int(f[1]))
        except (OSError, subprocess.SubprocessError):
            out["smi_error"] = "nvidia-smi could not be run"
            return
        gpu = max(gpu, gpu0_used_mib() or 0)
        stop.wait(0.2)
    if peak > 0:
        out["smi_peak_mib"] = peak
    else:
        out["smi_error"] = "nvidia-smi reported no memory for the process"
    out["gpu_peak_mib"] = gpu


def rows(path, seq, count, vocab=32000):
    if os.path.exists(path):
        return
    rng = random.Random(seq)
    with open(path, "w") as f:
        for _ in range(count):
            f.write(json.dumps({"input_ids": [rng.randrange(3, vocab) for _ in range(seq)]}) + "\n")


if only == "all":
    chosen = SETTINGS
elif only == "qlora":
    chosen = QLORA
else:
    chosen = [s for s in SETTINGS + QLORA
              if f"{s[0]}x{s[1]}{'-recompute' if s[2] else ''}{'-4bit' if s[3] else ''}"
              in only.split(",")]
    chosen = list(dict.fromkeys(chosen))
for bs, seq, gc, q4 in chosen:
    name = f"{bs}x{seq}{'-recompute' if gc else ''}{'-4bit' if q4 else ''}"
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
    if q4:
        cmd += ["--load-in-4bit"]
    before = gpu0_used_mib()
    t = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop, watch = threading.Event(), {}
    watcher = threading.Thread(target=smi_peak, args=(p.pid, stop, watch))
    watcher.start()
    log, _ = p.communicate()
    stop.set()
    watcher.join()
    wall = time.time() - t
    with open(os.path.join(work, f"cli-{name}.log"), "w") as f:
        f.write(" ".join(cmd) + "\n" + log)
    r = {"bench": "cli_train", "B": bs, "S": seq, "recompute": int(gc), "load_in_4bit": int(q4),
         "exit": p.returncode, "wall_s": round(wall, 1)}
    m = re.search(r"peak memory of the engine: (\d+) bytes", log)
    if m:
        r["engine_peak_gib"] = round(int(m.group(1)) / 2**30, 3)
    if "smi_peak_mib" in watch:
        r["smi_peak_gib"] = round(watch["smi_peak_mib"] / 1024, 3)
    elif "smi_error" in watch:
        r["smi_error"] = watch["smi_error"]
    if before is not None and watch.get("gpu_peak_mib"):
        # GPU 0's peak during the run less what was in use before it
        r["gpu0_delta_peak_gib"] = round((watch["gpu_peak_mib"] - before) / 1024, 3)
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
