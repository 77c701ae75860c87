#!/usr/bin/env python3
"""The user's path on the GPU: `lora4j train` on a random Mistral-7B-shaped folder (the reference
stack's shapes: benchmarks/reference/mistral-7b-bench-config.json) with pre-tokenized rows, in the
reference stack's four settings. Prints one JSON line per setting with the steady tokens/s read
from the run's metrics.jsonl (median over the steps after the first two) and the trainer's own
time breakdown. Run by scripts/gpu/run.sh (STEPS=cli), which then compares it with bench_cuda and
the reference stack measured in the same call (benchmarks/compare.py).

settings, one or more joined by commas, each a group or a setting's name:
  "all"    the reference stack's four settings on one GPU (4x2048, 4x2048-recompute,
           1x8192-recompute, 8x4096-recompute)
  "qlora"  QLoRA (issue 15): 1 x 2048 and 4 x 2048 with recompute, each with --load-in-4bit and
           in bf16 (1x2048-recompute-4bit, ...; STEPS=qlora)
  "ddp"    data parallel (issue 14): 4 x 2048 per GPU with and without --recompute layer, on one
           GPU and on two (--nproc-per-node 2: 4x2048-2gpu, 4x2048-recompute-2gpu); STEPS=ddp
  "selective" --recompute selective (each layer's attention output kept) at 1 x 8192 and 4 x 2048
           (1x8192-selective, 4x2048-selective), to set beside 1x8192-recompute and 4x2048-recompute
  "padded" rows of random length between S/2 and S (the trainer right-pads each batch to its
           longest row, as with ordinary chat data): 4x2048-padded and 4x2048-recompute-padded,
           then the same with --group-by-length (4x2048-padded-grouped, ...)
  "packed" rows of 256 to 1024 random tokens (S/8 to S/2) packed with --packing (several examples
           per row, each attending only to itself): 4x2048-packed and
           4x2048-attention-offload-packed
  "long"   1 x 32768 with --recompute layer, and with --recompute attention --offload-checkpoints
           (1x32768-recompute, 1x32768-attention-offload)
  "offload" --offload-checkpoints (what recompute keeps of each layer waits in pinned host
           memory): 4x2048-recompute-offload, 4x2048-selective-offload, 1x8192-selective-offload
  "attention" --recompute attention --offload-checkpoints (q, k, v and the attention output kept
           in host memory: the backward re-runs the norms, o projection and MLP): 4 x 2048,
           1 x 8192, 8 x 4096 (4x2048-attention-offload, ...)
  "ddp-attention" the same at 4 x 2048 per GPU on 2 GPUs (4x2048-attention-2gpu-offload)
  "short"  one short row without recompute, 1 x 512 and 1 x 1024 (1x512, 1x1024): steps of 40-70 ms
           on Mistral-7B, where the launch gaps that CUDA graphs take weigh most (run with
           LORA4J_CUDA_GRAPHS=0 and without to compare)
  "ddp4"   4 x 2048 per GPU on 1, 2 and 4 GPUs, without recompute and with --recompute attention
           --offload-checkpoints (4x2048, 4x2048-2gpu, 4x2048-4gpu, 4x2048-attention-offload, ...)
  "robust" the cost of robust aggregation (issue 14): 2 GPUs x --grad-accum 4 (8 virtual workers)
           at 4 x 2048 with recompute, --aggregation mean and median in the same call
           (4x2048-recompute-2gpu-accum4-mean, 4x2048-recompute-2gpu-accum4-median)
In a group of ranks, rank 0 writes metrics.jsonl, and its tokens_per_second is the step's real
tokens over all ranks and micro-batches (every rank collates the whole step's micro-batches and
computes its share) divided by rank 0's wall time of the step: global tokens/s. Every line also
carries the engine's peak ("peak memory of the engine", logged by each rank: the largest, and one
per rank in a group), nvidia-smi's peak for the run's processes (the launcher and its worker
JVMs), sampled every 0.2 s (the engine's allocations plus the CUDA context and library handles),
and each used GPU's peak less its use before the run (the same where nvidia-smi cannot see the
processes' pids).

Usage: cli_bench.py JAVA CLI_JAR MODEL_DIR WORK_DIR [settings]
       cli_bench.py --reference-settings SETTINGS   prints the HF_SETTINGS and
         LORA4J_BENCH_SETTINGS that time the same shapes, joined by "|" (run.sh uses it for
         STEPS="cli compare" when HF_SETTINGS / BENCH_SETTINGS are not given)
Environment: CLI_JAVA_OPTS (more JVM options), CLI_RUN_TIMEOUT_S (each run's limit, default 300 s:
the run's processes are stopped and the line says timed_out). Exits 1 when a run failed or gave
no tokens/s."""
import collections
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

Setting = collections.namedtuple("Setting",
                                 "bs seq recompute q4 nproc accum aggregation padded grouped"
                                 " offload packed",
                                 defaults=(1, 1, None, False, False, False, False))


# recompute: False / True (--recompute layer), SELECTIVE (--recompute selective) or ATTENTION
# (--recompute attention); the JSON line's "recompute" is 0, 1, 2 or 3, as bench_cuda's
SELECTIVE = 2
ATTENTION = 3
# the --recompute value of each, and the setting name's part ("-recompute" for per layer)
RECOMPUTE_FLAG = {True: "layer", SELECTIVE: "selective", ATTENTION: "attention"}


def one_gpu(bs, seq, recompute, q4=False):
    return Setting(bs, seq, recompute, q4)


SETTINGS = [one_gpu(4, 2048, False), one_gpu(4, 2048, True), one_gpu(1, 8192, True),
            one_gpu(8, 4096, True)]
QLORA = [one_gpu(1, 2048, True), one_gpu(1, 2048, True, True), one_gpu(4, 2048, True),
         one_gpu(4, 2048, True, True)]
# each 2-GPU run right after the 1-GPU run it is compared with
DDP = [one_gpu(4, 2048, False), Setting(4, 2048, False, False, 2),
       one_gpu(4, 2048, True), Setting(4, 2048, True, False, 2)]
ROBUST = [Setting(4, 2048, True, False, 2, 4, "mean"), Setting(4, 2048, True, False, 2, 4, "median")]
# long context (issue 12 item 4): one row of 32768 tokens with recompute
LONG = [one_gpu(1, 32768, True), Setting(1, 32768, ATTENTION, False, offload=True)]
SELECTIVE_SETTINGS = [one_gpu(1, 8192, SELECTIVE), one_gpu(4, 2048, SELECTIVE)]
PADDED = [Setting(4, 2048, False, False, padded=True), Setting(4, 2048, True, False, padded=True),
          Setting(4, 2048, False, False, padded=True, grouped=True),
          Setting(4, 2048, True, False, padded=True, grouped=True)]
# --offload-checkpoints: what recompute keeps of each layer waits in pinned host memory
OFFLOAD = [Setting(4, 2048, True, False, offload=True),
           Setting(4, 2048, SELECTIVE, False, offload=True),
           Setting(1, 8192, SELECTIVE, False, offload=True)]
# --recompute attention --offload-checkpoints: q, k, v and the attention output kept, in host memory
ATTENTION_SETTINGS = [Setting(4, 2048, ATTENTION, False, offload=True),
                      Setting(1, 8192, ATTENTION, False, offload=True),
                      Setting(8, 4096, ATTENTION, False, offload=True)]
# the same on 2 GPUs (issue 14's recompute setting, beside torch DDP's checkpointed run)
DDP_ATTENTION = [Setting(4, 2048, ATTENTION, False, 2, offload=True)]
# 1, 2 and 4 GPUs at 4 x 2048 per GPU (issue 17), without recompute and with --recompute
# attention --offload-checkpoints
DDP4 = [one_gpu(4, 2048, False), Setting(4, 2048, False, False, 2), Setting(4, 2048, False, False, 4),
        Setting(4, 2048, ATTENTION, False, offload=True),
        Setting(4, 2048, ATTENTION, False, 2, offload=True),
        Setting(4, 2048, ATTENTION, False, 4, offload=True)]
# --packing on short examples (several per row)
PACKED = [Setting(4, 2048, False, False, packed=True),
          Setting(4, 2048, ATTENTION, False, offload=True, packed=True)]
# short rows: steps of tens of milliseconds
SHORT = [one_gpu(1, 512, False), one_gpu(1, 1024, False)]
GROUPS = {"all": SETTINGS, "qlora": QLORA, "ddp": DDP, "robust": ROBUST, "long": LONG,
          "selective": SELECTIVE_SETTINGS, "padded": PADDED, "offload": OFFLOAD,
          "attention": ATTENTION_SETTINGS, "ddp-attention": DDP_ATTENTION,
          "ddp4": DDP4, "packed": PACKED, "short": SHORT}
STEPS = 8
# a run with --group-by-length covers one whole length group (50 batches, longest first), so its
# median step is not that of the group's longest rows alone
GROUPED_STEPS = 50


def steps_of(s):
    return GROUPED_STEPS if s.grouped else STEPS
MASTER_PORT = 29700  # the first group's rendezvous port; each run takes the next


def name_of(s):
    rc = "" if not s.recompute else "-recompute" if s.recompute is True \
        else "-" + RECOMPUTE_FLAG[s.recompute]
    n = f"{s.bs}x{s.seq}{rc}{'-4bit' if s.q4 else ''}"
    if s.nproc > 1:
        n += f"-{s.nproc}gpu"
    if s.accum > 1:
        n += f"-accum{s.accum}"
    if s.aggregation:
        n += f"-{s.aggregation}"
    if s.padded:
        n += "-padded"
    if s.grouped:
        n += "-grouped"
    if s.offload:
        n += "-offload"
    if s.packed:
        n += "-packed"
    return n


def choose(spec):
    """The settings a comma-separated list of groups and names asks for, in order, once each."""
    known = {name_of(s): s for g in GROUPS.values() for s in g}
    chosen = []
    for word in [w for w in spec.split(",") if w]:
        if word in GROUPS:
            chosen += GROUPS[word]
        elif word in known:
            chosen.append(known[word])
        else:
            sys.exit(f"cli_bench.py: unknown setting {word!r}; groups: {', '.join(GROUPS)}; "
                     f"names: {', '.join(known)}")
    return list(dict.fromkeys(chosen))


# bench_cuda's LORA4J_BENCH_SETTINGS that times exactly these command-line settings (others: its
# "reference" set, the reference stack's four)
ENGINE_FOR = {("4x2048",): "4x2048-none", ("4x2048-attention-offload",): "4x2048-attention",
              ("4x2048", "4x2048-attention-offload"): "4x2048", ("1x8192-recompute",): "1x8192",
              tuple(name_of(s) for s in ATTENTION_SETTINGS): "attention"}


def reference_settings(spec):
    """What the engine benchmark and the reference stack need to run beside the command line's
    settings `spec` in one call: (HF_SETTINGS, LORA4J_BENCH_SETTINGS). HF_SETTINGS names the
    reference stack's runs at the same shapes (gc: its gradient checkpointing, set beside every
    recompute mode), one GPU in bf16 only; empty when no chosen setting has one (the reference's
    default set then runs)."""
    chosen = choose(spec)
    hf = [f"{s.bs}x{s.seq}{'gc' if s.recompute else ''}" for s in chosen
          if s.nproc == 1 and s.accum == 1 and not (s.q4 or s.padded or s.packed or s.grouped)]
    engine = ENGINE_FOR.get(tuple(name_of(s) for s in chosen), "reference")
    return ",".join(dict.fromkeys(hf)), engine


def command(java, jar, model, data, out, s, port):
    """The `lora4j train` command line of setting s (port: the rendezvous port of a group)."""
    extra = os.environ.get("CLI_JAVA_OPTS", "").split()
    cmd = [java, "--enable-native-access=ALL-UNNAMED", "-Xmx16g"] + extra + ["-jar", jar, "train",
           "--model", model, "--data", data, "--output", out, "--device", "cuda",
           "--rank", "16", "--alpha", "16", "--targets", "all-linear",
           "--batch-size", str(s.bs), "--max-seq-length", str(s.seq), "--steps", str(steps_of(s)),
           "--lr", "1e-4", "--log-steps", "1", "--warmup-steps", "0"]
    if s.recompute:
        cmd += ["--recompute", RECOMPUTE_FLAG[s.recompute]]
    if s.q4:
        cmd += ["--load-in-4bit"]
    if s.nproc > 1:
        cmd += ["--nproc-per-node", str(s.nproc), "--master-port", str(port)]
    if s.accum > 1:
        cmd += ["--grad-accum", str(s.accum)]
    if s.aggregation:
        cmd += ["--aggregation", s.aggregation]
    if s.grouped:
        cmd += ["--group-by-length"]
    if s.offload:
        cmd += ["--offload-checkpoints"]
    if s.packed:
        cmd += ["--packing"]
    return cmd


def smi(args):
    return subprocess.run(["nvidia-smi"] + args + ["--format=csv,noheader,nounits"],
                          capture_output=True, text=True, timeout=10).stdout


def gpus_used_mib():
    """Memory in use on each GPU by every process, MiB, by index; empty when unknown."""
    try:
        used = {}
        for line in smi(["--query-gpu=index,memory.used"]).splitlines():
            f = [x.strip() for x in line.split(",")]
            if len(f) == 2 and f[0].isdigit() and f[1].isdigit():
                used[int(f[0])] = int(f[1])
        return used
    except (OSError, subprocess.SubprocessError):
        return {}


def tree(root):
    """root and its descendants' pids (from /proc)."""
    children = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children[ppid].append(int(d))
    found, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p not in found:
            found.add(p)
            todo += children.get(p, [])
    return found


def smi_peak(pid, stop, out):
    """Until stop is set: the most memory nvidia-smi reports for any of the run's processes (pid
    and its descendants: a launcher's workers each hold one GPU), MiB, and the most in use on each
    GPU (where a container hides the processes' pids from nvidia-smi)."""
    peak, gpus = 0, {}
    while not stop.is_set():
        try:
            pids = {str(p) for p in tree(pid)}
            for line in smi(["--query-compute-apps=pid,used_memory"]).splitlines():
                f = [x.strip() for x in line.split(",")]
                if len(f) == 2 and f[0] in pids and f[1].isdigit():
                    peak = max(peak, int(f[1]))
        except (OSError, subprocess.SubprocessError):
            out["smi_error"] = "nvidia-smi could not be run"
            return
        for i, used in gpus_used_mib().items():
            gpus[i] = max(gpus.get(i, 0), used)
        stop.wait(0.2)
    if peak > 0:
        out["smi_peak_mib"] = peak
    else:
        out["smi_error"] = "nvidia-smi reported no memory for the run's processes"
    out["gpu_peak_mib"] = gpus


def rows(path, seq, count, vocab=32000, padded=False, short=False):
    """count rows of seq random ids in path (padded: of a random length between seq / 2 and seq;
    short: between seq / 8 and seq / 2, for --packing); the same first rows whatever the count (a
    shorter file is written again, longer)."""
    if os.path.exists(path):
        with open(path) as f:
            if sum(1 for _ in f) >= count:
                return
    rng = random.Random(seq)
    with open(path, "w") as f:
        for _ in range(count):
            n = rng.randint(seq // 8, seq // 2) if short else rng.randint(seq // 2, seq) if padded \
                else seq
            f.write(json.dumps({"input_ids": [rng.randrange(3, vocab) for _ in range(n)]}) + "\n")


def data_file(work, seq, padded, short=False):
    return os.path.join(work, f"rows-{seq}{'-padded' if padded else ''}{'-short' if short else ''}"
                              ".jsonl")


RUNNING = []  # the run in progress, for the SIGTERM handler


def stop_group(p):
    """SIGTERM to the process group of run p (its launcher and workers), SIGKILL to what is left
    of it 15 s later."""
    try:
        os.killpg(p.pid, signal.SIGTERM)
        for _ in range(150):
            p.poll()  # reaps the launcher: a zombie would keep the group alive
            os.killpg(p.pid, 0)
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def terminated(signum, frame):
    """Stopped from outside (run.sh's timeout): the run in progress goes with it."""
    for p in RUNNING:
        stop_group(p)
    sys.exit(128 + signum)


def run(cmd, timeout):
    """Runs cmd in its own process group; returns (exit status or None, output, timed out,
    wall s, nvidia-smi figures)."""
    t = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    RUNNING[:] = [p]
    stop, watch = threading.Event(), {}
    watcher = threading.Thread(target=smi_peak, args=(p.pid, stop, watch))
    watcher.start()
    timed_out = False
    try:
        log, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        # its output is read meanwhile: a launcher blocked on a full pipe would not end
        killer = threading.Thread(target=stop_group, args=(p,))
        killer.start()
        log, _ = p.communicate()
        killer.join()
    RUNNING.clear()
    stop.set()
    watcher.join()
    return p.returncode, log, timed_out, time.time() - t, watch


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--reference-settings":
        print(*reference_settings(sys.argv[2]), sep="|")  # the first may be empty
        return
    signal.signal(signal.SIGTERM, terminated)
    java, jar, model, work = sys.argv[1:5]
    chosen = choose(sys.argv[5] if len(sys.argv) > 5 else "all")
    timeout = float(os.environ.get("CLI_RUN_TIMEOUT_S", "300"))
    # one file per sequence length, long enough for the setting that needs most rows, so that
    # the runs of one length read the same file
    need = collections.Counter()
    for s in chosen:
        # packed: up to 8 examples per row (S/8 tokens each at least)
        k = (s.seq, s.padded, s.packed)
        need[k] = max(need[k], s.bs * s.nproc * s.accum * (steps_of(s) + 1) * (8 if s.packed else 1))
    for (seq, padded, short), count in need.items():
        rows(data_file(work, seq, padded, short), seq, count, padded=padded, short=short)
    failed = 0
    for i, s in enumerate(chosen):
        name = name_of(s)
        workers = s.nproc * s.accum
        data = data_file(work, s.seq, s.padded, s.packed)
        out = os.path.join(work, "run-" + name)
        subprocess.run(["rm", "-rf", out])
        cmd = command(java, jar, model, data, out, s, MASTER_PORT + i)
        before = gpus_used_mib()
        status, log, timed_out, wall, watch = run(cmd, timeout)
        with open(os.path.join(work, f"cli-{name}.log"), "w") as f:
            f.write(" ".join(cmd) + "\n" + log)
        r = {"bench": "cli_train", "setting": name, "B": s.bs, "S": s.seq,
             "recompute": int(s.recompute), "load_in_4bit": int(s.q4), "nproc": s.nproc,
             "grad_accum": s.accum, "aggregation": s.aggregation or "mean", "workers": workers,
             "exit": status, "wall_s": round(wall, 1)}
        if s.offload:
            r["offload"] = 1
        if timed_out:
            r["timed_out"] = True
        # every rank logs its engine's peak; alone, without the "[rank i] " prefix
        peaks = {int(m.group(1) or 0): int(m.group(2)) for m in re.finditer(
            r"^(?:\[rank (\d+)\] )?(?:lora4j: )?peak memory of the engine: (\d+) bytes", log, re.M)}
        if peaks:
            r["engine_peak_gib"] = round(max(peaks.values()) / 2**30, 3)
            if s.nproc > 1:
                r["engine_peak_gib_per_rank"] = [round(peaks[k] / 2**30, 3) for k in sorted(peaks)]
        if "smi_peak_mib" in watch:
            r["smi_peak_gib"] = round(watch["smi_peak_mib"] / 1024, 3)
        elif "smi_error" in watch:
            r["smi_error"] = watch["smi_error"]
        used = watch.get("gpu_peak_mib", {})
        # each GPU's peak during the run less what was in use before it (the run's GPUs 0..n-1)
        delta = [round((used[g] - before[g]) / 1024, 3) for g in range(s.nproc)
                 if g in used and g in before]
        if delta and len(delta) == s.nproc:
            r["gpu0_delta_peak_gib"] = delta[0]
            if s.nproc > 1:
                r["gpu_delta_peak_gib"] = delta
        try:
            with open(os.path.join(out, "metrics.jsonl")) as f:
                steps = [json.loads(l) for l in f if l.strip()]
            tps = [m["tokens_per_second"] for m in steps
                   if m.get("type") == "step" and "tokens_per_second" in m and m.get("step", 0) > 2]
            r["tokens_per_s"] = round(statistics.median(tps)) if tps else None
            if tps and s.padded:
                r["padded"] = 1
                if s.grouped:
                    r["grouped"] = 1
            elif tps and s.packed:
                r["packed"] = 1  # tokens/s of the examples' tokens; rows hold several
            elif tps:
                # rows of exactly S tokens: every step has B x S x workers real tokens
                r["step_s"] = round(s.bs * s.seq * workers / statistics.median(tps), 4)
            mem = [m.get("memory_bytes") for m in steps if m.get("type") == "step"]
            mem = [m for m in mem if m]
            if mem:
                r["memory_gib"] = round(max(mem) / 2**30, 2)
        except (OSError, ValueError, KeyError) as e:
            r["error"] = str(e)
        # rank 0's lines (alone: the unprefixed ones)
        m = re.search(r"^(?:\[rank 0\] )?(?:lora4j: )?(time per optimizer step.*)", log, re.M)
        if m:
            r["breakdown"] = m.group(1)
        m = re.search(r"^(?:\[rank 0\] )?done: (\d+) steps \((\d+) skipped\) in ([\d.]+)s", log, re.M)
        if m:
            r["skipped"] = int(m.group(2))
            r["train_s"] = float(m.group(3))
        # a row cut short means the setting did not run at its length (the engine's positions)
        m = re.search(r"tokens cut to maxSeqLength (\d+)", log)
        if m:
            r["error"] = f"rows cut to {m.group(1)} tokens: not the setting's {s.seq}"
        if status != 0 or not r.get("tokens_per_s") or m:
            r["tail"] = log[-600:]
            failed += 1
        print(json.dumps(r), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
