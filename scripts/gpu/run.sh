#!/usr/bin/env bash
# The one script for the GPU machine (CUDA 13 + cuBLAS, cmake, ninja; no Java, no network).
# Run from the repository root:  bash scripts/gpu/run.sh
# Builds native/ with the CUDA backend (sm_80 + sm_90), runs every ctest test (CPU and CUDA),
# writes the logs under $OUT (or ./gpu-out), and prints a short summary table LAST.
# Steps can be chosen with STEPS (space separated): build test cudasan java cli compare bench
# profile phases gemms dist distbench ops qlora ddp gen. "phases": the time of every op of the step
# (LORA4J_PHASE_TIMES, benchmarks/phases.py), the breakdown nsys would give. "gemms": the frozen
# GEMM shapes per cuBLASLt algorithm and operand kind (bench_gemm_cuda; GEMMS_ARGS its arguments,
# e.g. "--data model --sustain 20" to time them back to back for 20 s as well, or
# "--algos 6 --data model --sustain-algos 1.2" for each GEMM's algorithms under that load).
# All logs end up in $OUT/logs.tgz (the device tool brings back at most 8 files).
# Default: build test. "compare" times the whole step at the reference stack's settings and runs
# the reference stack (benchmarks/reference/hf_peft_baseline.py) in the same call. "dist" runs
# the 2-GPU checks of distributed training (scripts/gpu/dist.sh; needs 2 GPUs and .device/).
# "qlora" (after build; needs .device/ from scripts/gpu/pack-java.sh): the frozen GEMM bf16 vs NF4 scratch vs NF4
# fused at Mistral-7B's projection shapes, then `lora4j train --load-in-4bit` beside the bf16 base
# at 1 x 2048 and 4 x 2048 with recompute (benchmarks/compare.py --qlora prints the targets).
# "gen" (.device/; no native build needed): `lora4j generate` on the random 7B folder as
# RESULTS.md's decode figures are measured, each form of GEN_FORMS in turn (scripts/gpu/gen.sh:
# GEN_FORMS="default pdl0=LORA4J_DECODE_PDL=0" times the default beside plain launches).
# "ddp" (2 GPUs and .device/; needs no native build: the jar carries the CUDA backend): issue 14's
# benchmark, the torch DDP reference (benchmarks/reference/hf_ddp_baseline.py under torchrun on 2
# GPUs and on 1) and `lora4j train` on 1 and 2 GPUs at 4 x 2048 per GPU with and without
# recompute, then 2 GPUs x --grad-accum 4 with --aggregation mean and median, in the same call
# (benchmarks/compare.py --ddp prints the rows and the targets).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/gpu-out}
STEPS=${STEPS:-build test}
BUILD=${BUILD_DIR:-$ROOT/native/build-gpu}
mkdir -p "$OUT"
has() { [[ " $STEPS " == *" $1 "* ]]; }
status=0
t0=$(date +%s)

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader \
  > "$OUT/gpu.txt" 2>&1 || true

if has build; then
  echo "== configure + build ($(nproc) cores)"
  if ! cmake -S "$ROOT/native" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-80;90}" -DLORA4J_MARCH=native > "$OUT/configure.log" 2>&1; then
    tail -40 "$OUT/configure.log"; echo "CONFIGURE FAILED"; exit 1
  fi
  grep -E "lora4j:" "$OUT/configure.log" || true
  if ! cmake --build "$BUILD" -j "$(nproc)" > "$OUT/build.log" 2>&1; then
    grep -E "error|Error" "$OUT/build.log" | head -40; echo "BUILD FAILED"; exit 1
  fi
  echo "build ok in $(( $(date +%s) - t0 )) s"
fi

if has test; then
  echo "== ctest"
  # LORA4J_REALWIDTH_STEPS: AdamW steps of the 2-layer 7B-width model on the CPU and CUDA
  # engines side by side (test_realwidth_cuda), 0 to skip.
  # LORA4J_REQUIRE_GPU=1: a CUDA test that finds no device fails instead of skipping.
  # LORA4J_REQUIRE_GPUS (REQUIRE_GPUS, default 1): test_dist_cuda needs 2 devices and skips with
  # fewer unless this is 2 or more (REQUIRE_GPUS=2 on the 2-GPU machine), then it fails.
  (cd "$BUILD" && LORA4J_REQUIRE_GPU=1 LORA4J_REQUIRE_GPUS=${REQUIRE_GPUS:-1} \
     LORA4J_REALWIDTH_STEPS=${REALWIDTH_STEPS:-0} \
     ctest -V --timeout 900 ${CTEST_ARGS:-}) \
    > "$OUT/ctest.log" 2>&1 || status=1
  sed -E 's/^[0-9]+: //' "$OUT/ctest.log" > "$OUT/tests.log"
fi

# "cudasan" (after build): the test cases of lora_dy_pair, lora_b_residual and the Hopper attention
# kernels (test_ops_cuda with LORA4J_OPS_ONLY=lora_dy, lora_b, then attention) under
# compute-sanitizer's memcheck, racecheck (shared memory) and initcheck (uninitialized device
# memory read), each failing the step on any report. The attention cases skip racecheck: on the
# Hopper backward it reports shared-memory pairs that the kernel's mbarriers order (the loader
# warp's lse / delta stores against the consumers' reads, at hd64 as at hd128, and hd128's dQ
# staging stores against the converting warps' reads of the Q tile): it does not follow those
# handoffs (NOTES.md, "dQ through shared memory").
if has cudasan; then
  echo "== compute-sanitizer on test_ops_cuda's lora_dy, lora_b and attention cases"
  SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  for only in lora_dy lora_b attention; do
    tools="memcheck racecheck initcheck"
    [ "$only" = attention ] && tools="memcheck initcheck"
    for tool in $tools; do
      if LORA4J_OPS_ONLY=$only timeout 600 "$SAN" --tool "$tool" --error-exitcode 1 \
          "$BUILD/test_ops_cuda" > "$OUT/cudasan-$only-$tool.log" 2>&1; then
        echo "cudasan $only $tool: clean"
      else
        echo "FAIL cudasan $only $tool (see $OUT/cudasan-$only-$tool.log)"
        tail -20 "$OUT/cudasan-$only-$tool.log"; status=1
      fi
    done
  done
fi

if has java; then
  # The GPU machine has no Java: scripts/gpu/pack-java.sh (run on the build machine) leaves a
  # jlink runtime, the command-line jar, the test classes and the JUnit launcher in .device/.
  echo "== java GPU tests (GoldenTest and CudaEngineTest on cuda:0) and the demo on the GPU"
  if [ ! -f "$ROOT/.device/jre.tar.xz" ]; then
    echo "no .device/jre.tar.xz: run scripts/gpu/pack-java.sh first"; status=1
  else
    rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf "$ROOT/.device/jre.tar.xz"
    JAVA=/tmp/lora4j-jre/bin/java
    # The CUDA backend comes from the jar itself (built where there is no cuBLAS; it opens the
    # machine's libcublasLt at run time), not from the build above.
    JOPTS=(--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp)
    (cd "$ROOT/java" && "$JAVA" "${JOPTS[@]}" -Dlora4j.test.device=cuda \
        -cp "$ROOT/.device/test-classes.jar:$ROOT/.device/lora4j-cli.jar:$ROOT/.device/junit-console.jar" \
        org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree \
        --select-class dev.lora4j.golden.GoldenTest --select-class dev.lora4j.CudaEngineTest) \
        > "$OUT/java.log" 2>&1 || status=1
    grep -aE "^golden |cuda vs cpu|tests (successful|failed|skipped)" "$OUT/java.log" > "$OUT/java-summary.log" || true
    (cd "$ROOT" && OUT_DIR=/tmp/lora4j-demo "$JAVA" "${JOPTS[@]}" -jar .device/lora4j-cli.jar train \
        --model examples/models/tiny-mistral --data examples/data/sample-chat.jsonl \
        --output /tmp/lora4j-demo --device cuda --rank 16 --alpha 32 --targets all-linear \
        --lr 5e-3 --schedule cosine --warmup-steps 5 --batch-size 8 --epochs 8 \
        --completions-only --val-fraction 0.1 --eval-steps 100 --log-steps 50 --seed 1) \
        > "$OUT/demo-cuda.log" 2>&1 || status=1
  fi
fi
# The random 7B-shaped folder of the cli, gen and qlora steps (lora4j init-model, once per
# machine), with the tiny model's tokenizer (generate needs one; training reads pre-tokenized rows).
cli_model() {
  [ -x /tmp/lora4j-jre/bin/java ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf "$ROOT/.device/jre.tar.xz"; }
  J=/tmp/lora4j-jre/bin/java
  mkdir -p /tmp/lora4j-cli
  t1=$(date +%s)
  if [ ! -f /tmp/lora4j-cli/m7b/config.json ]; then
    "$J" --enable-native-access=ALL-UNNAMED -jar "$ROOT/.device/lora4j-cli.jar" init-model \
      --config "$ROOT/benchmarks/reference/mistral-7b-bench-config.json" --output /tmp/lora4j-cli/m7b \
      --tokenizer "$ROOT/examples/models/tiny-mistral" > "$OUT/init-model.log" 2>&1 || { tail -5 "$OUT/init-model.log"; status=1; }
  fi
  [ -f /tmp/lora4j-cli/m7b/tokenizer.json ] ||
    cp "$ROOT"/examples/models/tiny-mistral/tokenizer*.json /tmp/lora4j-cli/m7b/
  echo "init-model (7.2B parameters, bf16): $(( $(date +%s) - t1 )) s"
}
# The whole step at the reference settings (BENCH_SETTINGS: bench_cuda's settings, default
# reference; "selective" times per-layer and selective recompute at 1 x 8192 and 4 x 2048 for
# CLI_SETTINGS=selective; "attention" the three settings of CLI_SETTINGS=attention), appended to bench_reference.jsonl; $1 names the run in a failure.
has compare && : > "$OUT/bench_reference.jsonl"
engine_bench() {
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=${BENCH_SETTINGS:-reference} timeout 200 \
    "$BUILD/bench_cuda" >> "$OUT/bench_reference.jsonl" 2>&1 \
    || { echo "bench ($1) failed"; tail -5 "$OUT/bench_reference.jsonl"; status=1; }
}
if has cli; then
  # The user's path: lora4j train (the packed jar, only a Java runtime) on a random 7B-shaped
  # folder made by lora4j init-model, in the reference stack's four settings (CLI_SETTINGS to
  # choose), then the engine benchmark and the reference stack in the same call.
  echo "== lora4j train on a random Mistral-7B folder (benchmarks/cli_bench.py)"
  if has compare && [ -n "${CLI_SETTINGS:-}" ]; then
    # the engine benchmark and the reference stack at the command line's shapes only, unless
    # BENCH_SETTINGS / HF_SETTINGS say otherwise (their defaults run all four settings, ~6 min)
    IFS='|' read -r hf_for engine_for < <(python3 "$ROOT/benchmarks/cli_bench.py" --reference-settings "$CLI_SETTINGS")
    [ -z "${HF_SETTINGS:-}" ] && [ -n "${hf_for:-}" ] && export HF_SETTINGS=$hf_for
    [ -z "${BENCH_SETTINGS:-}" ] && [ -n "${engine_for:-}" ] && BENCH_SETTINGS=$engine_for
    echo "beside it: bench_cuda ${BENCH_SETTINGS:-reference}, the reference stack ${HF_SETTINGS:-(its four settings)}"
  fi
  cli_model
  # With "compare" too, the engine benchmark runs before the command line as well as after it
  # (both into bench_reference.jsonl): compare.py sets the command line beside the mean of the
  # two, since the engine's own figure moves by 1-1.5% within one call.
  has compare && engine_bench "before the command line"
  python3 "$ROOT/benchmarks/cli_bench.py" "$J" "$ROOT/.device/lora4j-cli.jar" /tmp/lora4j-cli/m7b \
    /tmp/lora4j-cli "${CLI_SETTINGS:-all}" > "$OUT/cli_bench.jsonl" 2>&1 || status=1
  cat "$OUT/cli_bench.jsonl"
  cp /tmp/lora4j-cli/cli-*.log "$OUT/" 2>/dev/null || true
fi
if has gen; then
  echo "== lora4j generate on a random Mistral-7B folder (scripts/gpu/gen.sh)"
  cli_model
  # a random rank-16 adapter on every linear layer, for forms with ADAPTER=/tmp/lora4j-cli/a7b
  [ -f /tmp/lora4j-cli/a7b/adapter_config.json ] ||
    python3 "$ROOT/scripts/gpu/random-adapter.py" /tmp/lora4j-cli/m7b /tmp/lora4j-cli/a7b || status=1
  JAVA=$J GEN_MODEL=/tmp/lora4j-cli/m7b bash "$ROOT/scripts/gpu/gen.sh" "$OUT/gen" > "$OUT/gen.txt" 2>&1 \
    || status=1
  cat "$OUT/gen.txt"
fi
if has compare; then
  # The whole step at the reference stack's four settings, then the reference stack itself, in
  # the same call; benchmarks/compare.py prints the ratios.
  echo "== lora4j vs Hugging Face + PEFT (32 layers, the reference's four settings)"
  engine_bench "the reference settings"
  OUT="$OUT" PYTHONUNBUFFERED=1 timeout 330 python3 "$ROOT/benchmarks/reference/hf_peft_baseline.py" \
    > "$OUT/hf_baseline.log" 2>&1 || { echo "reference stack failed"; tail -5 "$OUT/hf_baseline.log"; status=1; }
fi
if has bench; then
  echo "== benchmarks (native/bench/bench_cuda.cpp; reference stack: shared/bench/hf_peft_baseline.py)"
  LORA4J_CUDA_LIBRARY="$BUILD/liblora4j_cuda.so" timeout 300 "$BUILD/bench_cuda" \
    > "$OUT/bench.jsonl" 2>&1 || { echo "bench failed"; tail -5 "$OUT/bench.jsonl"; status=1; }
  # Robust aggregation rules on the device at the 7B rank-16 size, 8 workers (issue 14).
  echo "== robust aggregation on cuda:0 (native/bench/bench_aggregate_cuda.cpp, n = 8)"
  timeout 300 "$BUILD/bench_aggregate_cuda" 41943040 8 10 > "$OUT/bench_aggregate.jsonl" 2>&1 \
    || { echo "bench_aggregate_cuda failed"; status=1; }
  cat "$OUT/bench_aggregate.jsonl"
fi

if has profile; then
  # Where the step's time goes, kernel by kernel: bench_cuda (4 layers, its default settings)
  # under Nsight Systems, the GPU kernels summed by name (top 40) in $OUT/profile.txt. Without
  # nsys, bench_cuda runs with the CUPTI injection library of the build instead
  # (native/bench/kernel_trace.cpp, CUDA_INJECTION64_PATH): profile.txt then has the GPU's idle
  # time between kernels (busy, idle and idle share, a histogram of the gaps, one line per stretch
  # of back-to-back work over 50 ms, gaps over LORA4J_KERNEL_TRACE_PAUSE_US (default 2000 us)
  # counting as host pauses) and the same kernel table.
  NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
  TRACE_LIB="$BUILD/liblora4j_kernel_trace.so"
  if [ -z "$NSYS" ] && [ -f "$TRACE_LIB" ]; then
    echo "== kernel time breakdown and launch gaps (CUPTI kernel trace, bench_cuda with 4 layers)"
    rm -f "$OUT/profile.txt"
    CUDA_INJECTION64_PATH="$TRACE_LIB" LORA4J_KERNEL_TRACE_OUT="$OUT/profile.txt" \
      LORA4J_CUDA_LIBRARY="$BUILD/liblora4j_cuda.so" timeout 300 "$BUILD/bench_cuda" \
      > "$OUT/profile-run.log" 2>&1 || { echo "bench_cuda under the kernel trace failed"; tail -5 "$OUT/profile-run.log"; status=1; }
    if [ -s "$OUT/profile.txt" ]; then
      cat "$OUT/profile.txt"
    else
      echo "no kernel trace report (see $OUT/profile-run.log)" | tee "$OUT/profile.txt"; status=1
    fi
  elif [ -z "$NSYS" ]; then
    echo "== kernel time breakdown"
    echo "no nsys on this machine and no $TRACE_LIB (built where CUPTI is found)" | tee "$OUT/profile.txt"
  else
    echo "== kernel time breakdown (nsys, bench_cuda with 4 layers)"
    LORA4J_CUDA_LIBRARY="$BUILD/liblora4j_cuda.so" timeout 300 "$NSYS" profile -t cuda -o /tmp/lora4j-prof \
      --force-overwrite true "$BUILD/bench_cuda" > "$OUT/profile-run.log" 2>&1 || status=1
    "$NSYS" stats -r cuda_gpu_kern_sum -f csv -o /tmp/lora4j-prof-k /tmp/lora4j-prof.nsys-rep \
      > /dev/null 2>&1 || true
    python3 - "$OUT/profile.txt" <<'PY'
import csv, glob, sys
f = sorted(glob.glob("/tmp/lora4j-prof-k*.csv"))
rows = list(csv.DictReader(open(f[0]))) if f else []
tot = sum(float(r["Total Time (ns)"]) for r in rows) or 1
with open(sys.argv[1], "w") as o:
    o.write("%6s %10s %8s %10s  %s\n" % ("share", "total ms", "calls", "mean us", "kernel"))
    for r in rows[:40]:
        t = float(r["Total Time (ns)"])
        o.write("%5.1f%% %10.2f %8s %10.1f  %s\n" % (100 * t / tot, t / 1e6, r["Instances"],
                float(r["Avg (ns)"]) / 1e3, r["Name"][:110]))
print(open(sys.argv[1]).read() if rows else "no kernel summary")
PY
  fi
fi
if has gemms; then
  # The engine's frozen GEMM shapes through cuBLASLt's first 8 algorithms on zeros, uniform and
  # the model's own operand distributions (native/bench/bench_gemm_cuda.cpp): the rate the data
  # allows, and what the heuristic's first choice leaves behind.
  echo "== frozen GEMMs per algorithm and operand kind (bench_gemm_cuda)"
  timeout 400 "$BUILD/bench_gemm_cuda" ${GEMMS_ARGS:-} > "$OUT/gemms.jsonl" 2>&1 \
    || { echo "bench_gemm_cuda failed"; tail -3 "$OUT/gemms.jsonl"; status=1; }
  grep '^# ' "$OUT/gemms.jsonl"
fi
if has phases; then
  # Where the step's time goes, op by op (no profiler needed): bench_cuda at the reference
  # settings with LORA4J_PHASE_TIMES (a CUDA event after every GEMM and kernel; the engine writes
  # the sums when destroyed), then benchmarks/phases.py's tables.
  echo "== time per op (LORA4J_PHASE_TIMES, bench_cuda, 32 layers, the reference settings)"
  rm -f "$OUT/phases.jsonl"
  LORA4J_PHASE_TIMES="$OUT/phases.jsonl" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=reference \
    timeout 300 "$BUILD/bench_cuda" > "$OUT/bench_phases.jsonl" 2>&1 || { echo "bench failed"; status=1; }
  python3 "$ROOT/benchmarks/phases.py" "$OUT/bench_phases.jsonl" "$OUT/phases.jsonl" \
    | tee "$OUT/phases.txt" || status=1
fi
if has distbench; then
  # 2 GPUs: forward_backward + the gradient all-reduce at Mistral-7B shapes (41,943,040 LoRA
  # gradients), without and with the overlap, both recompute modes; NCCL's default transport
  # (NVLink), then its socket transport (the path between hosts).
  echo "== gradient all-reduce overlapped with the backward (test_dist_cuda bench, 2 GPUs)"
  LORA4J_CUDA_LIBRARY="$BUILD/liblora4j_cuda.so" timeout 280 "$BUILD/test_dist_cuda" bench \
    > "$OUT/dist_bench.jsonl" 2>&1 || { echo "dist bench failed"; status=1; }
  NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 LORA4J_CUDA_LIBRARY="$BUILD/liblora4j_cuda.so" \
    timeout 280 "$BUILD/test_dist_cuda" bench >> "$OUT/dist_bench.jsonl" 2>&1 \
    || { echo "dist bench (socket transport) failed"; status=1; }
  cat "$OUT/dist_bench.jsonl"
fi

if has ops; then
  # Every op variant of the single-op benchmarks at Mistral-7B shapes (native/bench/bench_ops.cpp);
  # then the same through the JMH OpBenchmark when scripts/gpu/pack-java.sh packed
  # .device/benchmarks.jar (its failure is reported, not counted: the native line is the result).
  echo "== op variants on cuda:0 (bench_ops)"
  LORA4J_CUDA_BENCH_LIBRARY="$BUILD/liblora4j_cuda_bench.so" timeout 500 "$BUILD/bench_ops" ${OPS_ARGS:-} \
    > "$OUT/ops.txt" 2>&1 || { echo "bench_ops failed"; status=1; }
  cat "$OUT/ops.txt"
  # torch's scaled_dot_product_attention (cuDNN, FA2, efficient backends) at the same shapes in
  # the same call (benchmarks/reference/torch_ops_baseline.py); compare.py --attention sets our
  # attention kernels beside cuDNN's.
  echo "== torch SDPA attention, same call (benchmarks/reference/torch_ops_baseline.py)"
  OUT="$OUT" timeout 300 python3 "$ROOT/benchmarks/reference/torch_ops_baseline.py" \
    > "$OUT/torch_ops.log" 2>&1 || { echo "torch_ops_baseline failed"; tail -3 "$OUT/torch_ops.log"; }
  [ -f "$OUT/anchors_ops.json" ] && python3 "$ROOT/benchmarks/compare.py" --attention \
    "$OUT/ops.txt" "$OUT/anchors_ops.json" | tee "$OUT/attention-vs-cudnn.txt"
  # The contract's table: ours and cuDNN timed alike, each held at the power cap for 3 s in one
  # process (benchmarks/reference/attention_sustained.py); the tables above time cuDNN in short
  # bursts, at a higher clock than bench_ops' longer runs (thirty-first session, call5).
  echo "== attention, ours and cuDNN sustained alike (benchmarks/reference/attention_sustained.py)"
  LORA4J_CUDA_BENCH_LIBRARY="$BUILD/liblora4j_cuda_bench.so" timeout 300 python3 \
    "$ROOT/benchmarks/reference/attention_sustained.py" "$BUILD/liblora4j_bench.so" 3 \
    > "$OUT/attention_sustained.jsonl" 2> "$OUT/attention_sustained.err" ||
    { echo "attention_sustained failed"; tail -3 "$OUT/attention_sustained.err"; }
  python3 "$ROOT/benchmarks/compare.py" --attention-sustained "$OUT/attention_sustained.jsonl" |
    tee "$OUT/attention-sustained-vs-cudnn.txt"
  if [ -f "$ROOT/.device/benchmarks.jar" ] && [ -f "$ROOT/.device/jre.tar.xz" ]; then
    echo "== JMH OpBenchmark -p device=cuda"
    [ -x /tmp/lora4j-jre/bin/java ] || tar -C /tmp -xJf "$ROOT/.device/jre.tar.xz"
    (cd "$ROOT" && timeout 900 /tmp/lora4j-jre/bin/java --enable-native-access=ALL-UNNAMED \
        -jar .device/benchmarks.jar OpBenchmark -p device=cuda -f 1 -wi 1 -w 1 -i 2 -r 1 \
        -jvmArgsAppend "-Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp") \
        > "$OUT/ops-jmh.txt" 2>&1 || echo "JMH OpBenchmark failed (see $OUT/ops-jmh.txt)"
    grep -aE "on cuda:|^OpBenchmark\.run" "$OUT/ops-jmh.txt" || true
  fi
fi

if has dist; then
  # The 2-GPU checks (equivalence, bitwise adapters, kill trial, two nodes over sockets, one
  # faulty rank); its table is printed again in the summary below.
  echo "== distributed training on 2 GPUs (scripts/gpu/dist.sh)"
  OUT="$OUT" bash "$ROOT/scripts/gpu/dist.sh" > "$OUT/dist.txt" 2>&1 || status=1
fi
if has ddp; then
  # Issue 14's benchmark, one call on nvidia-h200-x2. Time (about 5 minutes): the random 7B
  # folder once per machine (init-model, 14 s); each torchrun of the reference about a minute
  # (torch's import, the model built on the GPU, 2 x 11 steps of 0.7-1.0 s); each `lora4j train`
  # about 15 s to start and load the 14.5 GB folder (13-16 s in the committed cli logs; the 2
  # ranks load theirs at once) plus 8 steps: 0.5-0.65 s each, 2.6 s with --grad-accum 4, so
  # about 20, 25, 25, 30, 45 and 45 s for the six runs. The limits below end a run that hangs.
  echo "== data parallel: torch DDP and lora4j train on 1 and 2 GPUs, same call (issue 14)"
  ngpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | wc -l)
  if [ "$ngpu" -lt 2 ]; then
    echo "FAIL ddp: needs 2 GPUs, this machine has $ngpu"; status=1
  elif [ ! -f "$ROOT/.device/jre.tar.xz" ] || [ ! -f "$ROOT/.device/lora4j-cli.jar" ]; then
    echo "FAIL ddp: no .device/jre.tar.xz or .device/lora4j-cli.jar: run scripts/gpu/pack-java.sh first"
    status=1
  else
    t1=$(date +%s)
    # the reference: rank 0 prints global tokens/s and writes $OUT/hf_ddp_baseline_w{1,2}.json
    # DDP_WORLDS: the reference's world sizes (default "2 1")
    for w in ${DDP_WORLDS:-2 1}; do
      OUT="$OUT" PYTHONUNBUFFERED=1 timeout 150 python3 -m torch.distributed.run --standalone \
        --nproc_per_node $w "$ROOT/benchmarks/reference/hf_ddp_baseline.py" > "$OUT/hf_ddp_w$w.log" 2>&1 \
        || { echo "torch DDP reference on $w GPU(s) failed"; tail -5 "$OUT/hf_ddp_w$w.log"; status=1; }
      grep -a '^{' "$OUT/hf_ddp_w$w.log"
    done
    echo "reference: $(( $(date +%s) - t1 )) s"
    cli_model
    t1=$(date +%s)
    CLI_RUN_TIMEOUT_S=120 timeout 330 python3 "$ROOT/benchmarks/cli_bench.py" "$J" \
      "$ROOT/.device/lora4j-cli.jar" /tmp/lora4j-cli/m7b /tmp/lora4j-cli "${DDP_SETTINGS:-ddp,robust}" \
      > "$OUT/ddp_bench.jsonl" 2>&1 || status=1
    cat "$OUT/ddp_bench.jsonl"
    echo "lora4j train runs: $(( $(date +%s) - t1 )) s"
    for f in /tmp/lora4j-cli/cli-4x2048*.log; do cp "$f" "$OUT/ddp-$(basename "$f")" 2>/dev/null; done
  fi
fi
part() { [[ " ${QLORA_PARTS:-ops jmh cli} " == *" $1 "* ]]; }
if has qlora; then
  # Issue 15 (QLORA_PARTS chooses among ops jmh cli, to fit one call's time). The frozen GEMM (y = x W^T and dx = dy W) with a bf16 weight, an NF4 weight
  # dequantized into a bf16 scratch first (the engine's path) and an NF4 weight dequantized
  # inside the GEMM, at every Mistral-7B projection shape and 2048 / 8192 tokens (bench_ops);
  # the same through JMH when .device/benchmarks.jar is there. Their agreement with each other
  # and with the CPU twin is checked by test_op_bench_cuda (STEPS=test).
  if part ops; then
    echo "== frozen GEMM: bf16 vs nf4-scratch vs nf4-fused (bench_ops)"
    LORA4J_CUDA_BENCH_LIBRARY="$BUILD/liblora4j_cuda_bench.so" timeout 300 "$BUILD/bench_ops" \
      frozen_linear_fwd frozen_linear_bwd > "$OUT/qlora-ops.txt" 2>&1 || { echo "bench_ops failed"; status=1; }
    cat "$OUT/qlora-ops.txt"
  fi
  if part jmh && [ -f "$ROOT/.device/benchmarks.jar" ] && [ -f "$ROOT/.device/jre.tar.xz" ]; then
    echo "== JMH OpBenchmark, frozen GEMMs at the Mistral-7B projection shapes"
    [ -x /tmp/lora4j-jre/bin/java ] || tar -C /tmp -xJf "$ROOT/.device/jre.tar.xz"
    ops=frozen_linear_fwd/bf16,frozen_linear_fwd/nf4-scratch,frozen_linear_fwd/nf4-fused
    ops=$ops,frozen_linear_bwd/bf16,frozen_linear_bwd/nf4-scratch,frozen_linear_bwd/nf4-fused
    shapes=2048x4096x4096,2048x4096x1024,2048x4096x14336,2048x14336x4096
    shapes=$shapes,8192x4096x4096,8192x4096x1024,8192x4096x14336,8192x14336x4096
    (cd "$ROOT" && timeout 900 /tmp/lora4j-jre/bin/java --enable-native-access=ALL-UNNAMED \
        -jar .device/benchmarks.jar OpBenchmark -p device=cuda -p op=$ops -p shape=$shapes \
        -f 1 -wi 1 -w 1 -i 2 -r 1 -jvmArgsAppend "-Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp") \
        > "$OUT/qlora-jmh.txt" 2>&1 || echo "JMH OpBenchmark failed (see $OUT/qlora-jmh.txt)"
    grep -aE "on cuda:" "$OUT/qlora-jmh.txt" || true
  fi
  if part cli; then
    # The command line on the random 7B folder: each setting in 4 bits and in bf16, same call.
    echo "== lora4j train --load-in-4bit vs bf16, 1 x 2048 and 4 x 2048 with recompute"
    cli_model
    python3 "$ROOT/benchmarks/cli_bench.py" "$J" "$ROOT/.device/lora4j-cli.jar" /tmp/lora4j-cli/m7b \
      /tmp/lora4j-cli "${QLORA_SETTINGS:-qlora}" > "$OUT/qlora_bench.jsonl" 2>&1 || status=1
    cat "$OUT/qlora_bench.jsonl"
    for f in /tmp/lora4j-cli/cli-*-recompute*.log; do cp "$f" "$OUT/qlora-$(basename "$f")" 2>/dev/null; done
  fi
fi

# ---- summary table (last) -----------------------------------------------------------------
if [ -f "$OUT/hf_baseline.json" ] && [ -f "$OUT/bench_reference.jsonl" ]; then
  echo
  echo "================ lora4j vs Hugging Face + PEFT (same call) ================"
  python3 "$ROOT/benchmarks/compare.py" "$OUT/bench_reference.jsonl" "$OUT/hf_baseline.json" \
    $( [ -f "$OUT/cli_bench.jsonl" ] && echo "$OUT/cli_bench.jsonl" ) | tee "$OUT/compare.txt"
fi
if [ -f "$OUT/qlora_bench.jsonl" ]; then
  echo
  echo "================ QLoRA (issue 15): 4-bit vs bf16, same call ================"
  python3 "$ROOT/benchmarks/compare.py" --qlora "$OUT/qlora_bench.jsonl" | tee "$OUT/qlora.txt" || status=1
fi
if [ -f "$OUT/ddp_bench.jsonl" ]; then
  echo
  echo "================ data parallel (issue 14): 1 and 2 GPUs beside torch DDP, same call ================"
  python3 "$ROOT/benchmarks/compare.py" --ddp "$OUT/ddp_bench.jsonl" "$OUT/hf_ddp_baseline_w1.json" \
    "$OUT/hf_ddp_baseline_w2.json" | tee "$OUT/ddp.txt" || status=1
fi
if [ -f "$OUT/java-summary.log" ]; then
  echo
  echo "================ java on cuda:0 ================"
  grep -aE "^golden .*\(" "$OUT/java-summary.log" | awk '{ e=$(NF-1); t=$NF; gsub(/[()<= ]/,"",t);
    st = (t == "info") ? "INFO" : ((e+0 <= t+0) ? "PASS" : "FAIL"); print $0, st }'
  grep -aE "cuda vs cpu|tests (successful|failed|skipped)" "$OUT/java-summary.log"
  grep -aE "^(done|eval loss|eval after)" "$OUT/demo-cuda.log" | tail -3
fi
if [ -f "$OUT/tests.log" ]; then
  echo
  echo "================ summary ($(cat "$OUT/gpu.txt" | head -1)) ================"
  # attention: one line per case with the largest of its 5 errors
  grep -E '^\[attention\] ' "$OUT/tests.log" | awk '
    { tag=""; for (i=4; i<=NF-3; i++) tag=tag" "$i;
      e=$(NF-2); sub("err=","",e); st=$NF;
      if (!(tag in m) || e+0 > m[tag]+0 || e ~ /nan/) m[tag]=e;
      if (st != "PASS") f[tag]=1; if (!(tag in order)) { order[tag]=++n; tags[n]=tag } }
    END { for (i=1;i<=n;i++) { t=tags[i];
      printf("[attention] fwd+bwd%-44s max err=%s  tol=1e-02  %s\n", t, m[t], (t in f) ? "FAIL" : "PASS") } }'
  grep -E '^\[[a-z_]+\] ' "$OUT/tests.log" | grep -v '^\[attention\] '
  echo "----"
  grep -E 'tests passed|tests failed|\*\*\*Failed|Passed +[0-9.]+ sec|Skipped|Not Run' "$OUT/ctest.log" \
    | sed -E 's/^ +//' | tail -12
  [ -f "$OUT/bench.jsonl" ] && { echo "---- bench"; cat "$OUT/bench.jsonl"; }
  echo "total $(( $(date +%s) - t0 )) s; logs in $OUT"
fi
if [ -f "$OUT/dist_bench.jsonl" ]; then
  echo
  echo "================ gradient all-reduce, plain vs overlapped (2 GPUs) ================"
  grep -aE '^# |failed' "$OUT/dist_bench.jsonl" || tail -5 "$OUT/dist_bench.jsonl"
fi
if [ -f "$OUT/dist.txt" ]; then
  echo
  sed -n '/^================ distributed/,$p' "$OUT/dist.txt"
  grep -q '^================ distributed' "$OUT/dist.txt" || tail -20 "$OUT/dist.txt"
fi
# one archive of every log (the device tool brings back at most 8 files). A second run.sh in the
# same call archives into logs-2.tgz, and so on: an earlier run's archive is never replaced.
if [ -d "$OUT" ]; then
  archive=logs.tgz
  k=1
  while [ -e "$OUT/$archive" ]; do k=$((k + 1)); archive=logs-$k.tgz; done
  if tar -czf /tmp/lora4j-logs.tgz -C "$OUT" --exclude='logs.tgz' --exclude='logs-*.tgz' .; then
    find "$OUT" -mindepth 1 -maxdepth 1 ! -name 'logs.tgz' ! -name 'logs-*.tgz' -exec rm -rf {} +
    mv /tmp/lora4j-logs.tgz "$OUT/$archive"
  fi
fi
exit $status
