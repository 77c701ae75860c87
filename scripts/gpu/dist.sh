#!/usr/bin/env bash
# The 2-GPU checks of distributed training (issue 14), for one device call on 2 GPUs
# (nvidia-h200-x2). Run from the repository root after scripts/gpu/pack-java.sh filled .device/
# (the GPU machine has no Java: the jlink runtime and the CLI jar come from there, and the CUDA
# backend from the jar):  bash scripts/gpu/dist.sh   (or STEPS=dist bash scripts/gpu/run.sh)
# The tree and .device must fit the device tool's 64 MiB: `scripts/gpu/aside.sh out` first.
#
#   a. equivalence: 2 ranks (--nproc-per-node 2) with micro-batch b against 1 GPU with
#      --grad-accum 2 and micro-batch b: losses within 1e-2 relative at each of 20 steps
#   b. the adapters bitwise equal on both ranks (the trainer's SHA-256 check, logged by rank 0)
#   c. kill trial: kill -9 of rank 1's JVM mid-run; every other process ends within 60 s naming
#      rank 1; --resume finishes; its adapter against an uninterrupted run's
#   d. NCCL's socket transport as two nodes: two supervisors --nnodes 2 --node-rank 0/1
#      --nproc-per-node 1 with NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1, one GPU each: losses as (a)
#   e. one faulty GPU rank: 2 ranks x --grad-accum 3 (6 workers), worker 1 faulty
#      (gradient-scale:-10@1, alie:1@1) under mean, median, trimmed-mean, krum: final validation
#      loss against the same rule's clean run
# On more GPUs (issue 17, nvidia-h200-x4 / -x8): DIST_NPROC=N runs a-c and e with N ranks (a
# against 1 GPU x --grad-accum N; c kills rank 1 of N; d stays two nodes of one GPU each);
# DIST_ACCUM (default 3) is e's --grad-accum, so e has N x DIST_ACCUM workers; DIST_FAULTY_RANKS
# (e.g. "1" or "1 2") makes every worker of those ranks faulty (worker m is rank m mod N's, so
# rank r's are r, r + N, r + 2N, ...) instead of worker 1 alone, and the trimmed mean and Krum
# then run with f = the number of faulty workers.
# Prints PASS/FAIL lines and a short table last; logs under $OUT (or ./gpu-out/dist).
# Exit status 1 when a check fails or the machine lacks the GPUs (never a silent skip).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/gpu-out}/dist
mkdir -p "$OUT"
RUNS=/tmp/lora4j-dist
rm -rf "$RUNS" && mkdir -p "$RUNS"
t0=$(date +%s)
status=0
RESULTS=()
result() { # NAME PASS|FAIL DETAIL
  RESULTS+=("$(printf '%-4s %-44s %s' "$2" "$1" "$3")")
  echo "$2 $1: $3"
  [ "$2" = PASS ] || status=1
}

NPROC=${DIST_NPROC:-2}
ACCUM=${DIST_ACCUM:-3}
ngpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | wc -l)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
if [ "$ngpu" -lt "$NPROC" ] || [ "$ngpu" -lt 2 ]; then
  echo "FAIL dist: needs $NPROC GPUs (and at least 2), this machine has $ngpu"; exit 1
fi
# e's faulty workers: worker 1, or every worker of the ranks in DIST_FAULTY_RANKS
FAULTY=()
if [ -n "${DIST_FAULTY_RANKS:-}" ]; then
  for r in $DIST_FAULTY_RANKS; do
    for m in $(seq 0 $((ACCUM - 1))); do FAULTY+=($((r + m * NPROC))); done
  done
else
  FAULTY=(1)
fi
NF=${#FAULTY[@]}
WORKERS=$((NPROC * ACCUM))
# KIND:ARG -> KIND:ARG@w1,KIND:ARG@w2,... (--inject-fault's list form)
faults_of() { local out="" w; for w in "${FAULTY[@]}"; do out="$out${out:+,}$1@$w"; done; echo "$out"; }
if [ ! -f "$ROOT/.device/jre.tar.xz" ] || [ ! -f "$ROOT/.device/lora4j-cli.jar" ]; then
  echo "FAIL dist: no .device/jre.tar.xz or .device/lora4j-cli.jar: run scripts/gpu/pack-java.sh first"
  exit 1
fi
[ -x /tmp/lora4j-jre/bin/java ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf "$ROOT/.device/jre.tar.xz"; }
J=/tmp/lora4j-jre/bin/java
JAR=$ROOT/.device/lora4j-cli.jar
JOPTS=(--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp)
cd "$ROOT"
# The settings of every run: the tiny model on the shipped sample, 4 rows per micro-batch.
COMMON=(--model examples/models/tiny-mistral --data examples/data/sample-chat.jsonl
  --rank 8 --alpha 16 --targets all-linear --lr 5e-3 --schedule constant --batch-size 4
  --max-seq-length 256 --completions-only --shuffle-buffer 0 --seed 3 --val-fraction 0.1
  --log-steps 1)
train() { "$J" "${JOPTS[@]}" -jar "$JAR" train "$@"; }

# Python helpers: losses from metrics.jsonl, comparisons, safetensors.
cat > "$RUNS/dist_check.py" <<'EOF'
import json, struct, sys, math

def metrics(path):
    steps, evals = {}, []
    for line in open(path):
        o = json.loads(line)
        if o.get("type") == "step": steps[o["step"]] = o["loss"]
        if o.get("type") == "eval": evals.append(o.get("eval_loss"))
    return steps, evals

def losses(a, b, n, tol):
    sa, _ = metrics(a); sb, _ = metrics(b)
    worst, at = 0.0, 0
    for s in range(1, n + 1):
        if s not in sa or s not in sb:
            print(f"step {s} missing ({'first' if s not in sa else 'second'} run)"); return 1
        r = abs(sa[s] - sb[s]) / abs(sb[s])
        if r > worst: worst, at = r, s
    print(f"{n} steps, max relative loss difference {worst:.2e} at step {at} (tolerance {tol:g})")
    return 0 if worst <= tol else 1

def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n)); data = f.read()
    out = {}
    for k, v in head.items():
        if k == "__metadata__": continue
        b = data[v["data_offsets"][0]:v["data_offsets"][1]]
        if v["dtype"] == "F32": out[k] = struct.unpack(f"<{len(b)//4}f", b)
        elif v["dtype"] == "BF16":
            out[k] = [struct.unpack("<f", b"\0\0" + b[i:i+2])[0] for i in range(0, len(b), 2)]
        elif v["dtype"] == "F16": out[k] = struct.unpack(f"<{len(b)//2}e", b)
        else: raise SystemExit(f"{path}: dtype {v['dtype']} of {k}")
    return out

def adapters(a, b, tol):
    ta, tb = tensors(a), tensors(b)
    if ta.keys() != tb.keys(): print("different tensors"); return 1
    diff = norm = 0.0; mx = 0.0; same = True
    for k in ta:
        for x, y in zip(ta[k], tb[k]):
            if x != y: same = False
            diff += (x - y) ** 2; norm += y * y; mx = max(mx, abs(x - y))
    rel = math.sqrt(diff / norm) if norm else 0.0
    print(f"{'bitwise equal' if same else 'not bitwise equal'}: relative L2 {rel:.2e}, max abs {mx:.2e}"
          f" (tolerance relative L2 {tol:g})")
    return 0 if rel <= tol else 1

def final_eval(path):
    _, e = metrics(path); print(f"{e[-1]:.6f}" if e else "nan")

cmd = sys.argv[1]
if cmd == "losses": sys.exit(losses(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
if cmd == "adapters": sys.exit(adapters(sys.argv[2], sys.argv[3], float(sys.argv[4])))
if cmd == "eval": final_eval(sys.argv[2])
EOF
py() { python3 "$RUNS/dist_check.py" "$@"; }

# ---- a. equivalence and b. bitwise adapters ------------------------------------------------
echo "== a/b: $NPROC ranks x micro-batch 4 against 1 GPU x --grad-accum $NPROC (20 steps)"
train "${COMMON[@]}" --steps 20 --device cuda:0 --grad-accum $NPROC --output "$RUNS/one" > "$OUT/a-one-gpu.log" 2>&1 \
  || { tail -5 "$OUT/a-one-gpu.log"; }
train "${COMMON[@]}" --steps 20 --device cuda --nproc-per-node $NPROC --master-port 29611 \
  --output "$RUNS/two" > "$OUT/a-two-ranks.log" 2>&1 || { tail -5 "$OUT/a-two-ranks.log"; }
if d=$(py losses "$RUNS/two/metrics.jsonl" "$RUNS/one/metrics.jsonl" 20 1e-2 2>&1); then
  result "a. $NPROC ranks = 1 GPU x grad-accum $NPROC" PASS "$d"
else
  result "a. $NPROC ranks = 1 GPU x grad-accum $NPROC" FAIL "$d"
fi
line=$(grep -ao "adapters bitwise equal on all $NPROC ranks (sha256 [0-9a-f]*) after step 20" "$OUT/a-two-ranks.log" | head -1)
if [ -n "$line" ]; then result "b. adapters bitwise equal across ranks" PASS "$line"
else result "b. adapters bitwise equal across ranks" FAIL "no such line in a-two-ranks.log"; fi

# ---- c. kill trial ---------------------------------------------------------------------------
echo "== c: kill -9 of rank 1 mid-run, then --resume"
KSTEPS=300
train "${COMMON[@]}" --steps $KSTEPS --device cuda --nproc-per-node $NPROC --master-port 29621 \
  --save-steps 20 --output "$RUNS/whole" > "$OUT/c-uninterrupted.log" 2>&1 || tail -5 "$OUT/c-uninterrupted.log"
# started directly (not through the function) so that $! is the supervisor's JVM
"$J" "${JOPTS[@]}" -jar "$JAR" train "${COMMON[@]}" --steps $KSTEPS --device cuda --nproc-per-node $NPROC \
  --master-port 29622 --save-steps 20 --output "$RUNS/killed" > "$OUT/c-killed.log" 2>&1 &
sup=$!
# wait for step 50 (two checkpoints written), then SIGKILL the worker whose RANK is 1
victim=""
for _ in $(seq 1 1200); do
  s=$(grep -a '"type":"step"' "$RUNS/killed/metrics.jsonl" 2>/dev/null | tail -1 | sed -E 's/.*"step":([0-9]+).*/\1/')
  if [ -n "$s" ] && [ "$s" -ge 50 ]; then
    for c in $(pgrep -P $sup); do
      if tr '\0' '\n' < /proc/$c/environ 2>/dev/null | grep -qx "RANK=1"; then victim=$c; fi
    done
    break
  fi
  kill -0 $sup 2>/dev/null || break
  sleep 0.05
done
if [ -z "$victim" ]; then
  result "c. lost rank ends every process" FAIL "rank 1's JVM not found at step >= 50 (run ended at step ${s:-none}?)"
  wait $sup
else
  others=$(pgrep -P $sup | grep -vx "$victim" | tr '\n' ' ')
  tk=$(date +%s.%N)
  kill -9 "$victim"
  ended=""
  for _ in $(seq 1 1200); do
    if ! kill -0 $sup 2>/dev/null; then ended=$(date +%s.%N); break; fi
    sleep 0.05
  done
  left=""
  for p in $others; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
  wait $sup; rc=$?
  if [ -z "$ended" ]; then
    kill -9 $sup $others 2>/dev/null
    result "c. lost rank ends every process" FAIL "the supervisor still ran 60 s after the kill"
  else
    secs=$(python3 -c "print(f'{$ended - $tk:.1f}')")
    named=$(grep -a "rank 1 was lost" "$OUT/c-killed.log" | head -1)
    sup_line=$(grep -a "error: rank 1 (local rank 1" "$OUT/c-killed.log" | head -1)
    if [ -z "$left" ] && [ "$rc" -ne 0 ] && [ -n "$sup_line" ] && [ -n "$named" ]; then
      result "c. lost rank ends every process" PASS "all ended ${secs} s after kill -9 (status $rc); $(echo "$named" | cut -c1-120)"
    else
      result "c. lost rank ends every process" FAIL "ended ${secs} s after, status $rc, still running:[$left], rank 0 named it: [${named:0:100}], supervisor: [${sup_line:0:100}]"
    fi
  fi
  train "${COMMON[@]}" --steps $KSTEPS --device cuda --nproc-per-node $NPROC --master-port 29623 \
    --save-steps 20 --output "$RUNS/killed" --resume > "$OUT/c-resumed.log" 2>&1 || tail -5 "$OUT/c-resumed.log"
  # GPU tolerance: the resumed run reloads the fp32 adapter and AdamW state exactly, so it is
  # bitwise equal where every kernel and NCCL's ring order are deterministic; a reduction whose
  # order varies changes fp32 roundings, which ~250 AdamW steps (normalized updates) carry into
  # the weights. 1e-2 relative L2 bounds that while a lost or repeated step (whole-step changes
  # of about lr x sqrt(numel)) would exceed it. The line says whether the two are bitwise equal.
  if d=$(py adapters "$RUNS/killed/adapter/adapter_model.safetensors" "$RUNS/whole/adapter/adapter_model.safetensors" 1e-2 2>&1); then
    result "c. resumed adapter = uninterrupted" PASS "$d"
  else
    result "c. resumed adapter = uninterrupted" FAIL "$d"
  fi
fi

# ---- d. two 'nodes' over NCCL's socket transport ----------------------------------------------
echo "== d: --nnodes 2, one GPU each, NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1"
for n in 0 1; do
  CUDA_VISIBLE_DEVICES=$n NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 NCCL_DEBUG=INFO \
    "$J" "${JOPTS[@]}" -jar "$JAR" train "${COMMON[@]}" --steps 20 --device cuda \
    --nnodes 2 --node-rank $n --nproc-per-node 1 --master-addr 127.0.0.1 --master-port 29631 \
    --output "$RUNS/nodes" > "$OUT/d-node$n.log" 2>&1 &
  pids[$n]=$!
done
wait ${pids[0]}; r0=$?; wait ${pids[1]}; r1=$?
transport=$(grep -aoE "via NET/Socket|via P2P|via SHM" "$OUT/d-node0.log" | sort | uniq -c | tr '\n' ' ')
if [ $r0 -eq 0 ] && [ $r1 -eq 0 ] && d=$(py losses "$RUNS/nodes/metrics.jsonl" "$RUNS/one/metrics.jsonl" 20 1e-2 2>&1); then
  result "d. two nodes over sockets = 1 GPU" PASS "$d; NCCL: ${transport:-no transport line}"
else
  result "d. two nodes over sockets = 1 GPU" FAIL "status $r0/$r1; ${d:-}; NCCL: ${transport:-?}"
fi

# ---- e. one faulty GPU rank's worker under each rule -------------------------------------------
echo "== e: $NPROC ranks x --grad-accum $ACCUM ($WORKERS workers), worker(s) ${FAULTY[*]} faulty"
TABLE=()
port=29640
for rule in mean median trimmed-mean:$NF krum:$NF; do
  port=$((port + 1))
  r=${rule%%:*}
  train "${COMMON[@]}" --steps 20 --device cuda --nproc-per-node $NPROC --master-port $port --grad-accum $ACCUM \
    --aggregation $rule --output "$RUNS/e-$r-clean" > "$OUT/e-$r-clean.log" 2>&1 || tail -3 "$OUT/e-$r-clean.log"
  clean=$(py eval "$RUNS/e-$r-clean/metrics.jsonl" 2>/dev/null || echo nan)
  for kind in gradient-scale:-10 alie:1; do
    port=$((port + 1))
    fault=$(faults_of $kind)
    tag=${kind%%:*}
    train "${COMMON[@]}" --steps 20 --device cuda --nproc-per-node $NPROC --master-port $port --grad-accum $ACCUM \
      --aggregation $rule --inject-fault $fault --output "$RUNS/e-$r-$tag" > "$OUT/e-$r-$tag.log" 2>&1 \
      || tail -3 "$OUT/e-$r-$tag.log"
    v=$(py eval "$RUNS/e-$r-$tag/metrics.jsonl" 2>/dev/null || echo nan)
    TABLE+=("$(python3 -c "
c, v = float('$clean'), float('$v')
print(f'{\"$rule\":<16} {\"$kind\":<18} clean {c:.4f}  faulty {v:.4f}  {100*(v-c)/c:+7.2f}%')")")
  done
done
ok=$(printf '%s\n' "${TABLE[@]}" | grep -vc nan)
if [ "$ok" -eq 8 ]; then result "e. faulty worker runs (8 + 4 clean)" PASS "table below"
else result "e. faulty worker runs (8 + 4 clean)" FAIL "$((8 - ok)) run(s) without a validation loss"; fi

# ---- table (last) ------------------------------------------------------------------------------
echo
echo "================ distributed on $NPROC GPUs ($(head -1 "$OUT/gpu.txt")) ================"
printf '%s\n' "${RESULTS[@]}"
echo "---- final validation loss, worker(s) ${FAULTY[*]} of $WORKERS faulty, against the rule's clean run"
printf '%s\n' "${TABLE[@]}"
echo "total $(( $(date +%s) - t0 )) s; logs in $OUT"
exit $status
