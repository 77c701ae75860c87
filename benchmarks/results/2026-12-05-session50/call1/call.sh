set -u
# Prepared in the forty-ninth session, not run (no device machine was lent in thirteen tries): the
# q / k GEMM with RoPE's forward as its epilogue (next/s50-qk-rope.patch, applied first:
# qk_rope_sm90.cu, the default on Hopper; LORA4J_QK_ROPE_FUSED=0 keeps the GEMM into fp32 and
# rope_forward; TileRing in sm90.cuh, which swiglu_gu_sm90.cu takes too). Run from the root of a
# tree at main: LIMIT=590 bash benchmarks/results/2026-12-05-session49/next/s50c1.sh
# 1) build (sm_90); test_ops_cuda (qk_rope cases: permuted ones bitwise against rope_forward, random
#    against double at 7B's q and k), test_engine_cuda (qk rope A/B on hd128, phase names),
#    LORA4J_REQUIRE_GPU=1
# 2) bench_cuda paired, 4 x 2048 no recompute: b = LORA4J_QK_ROPE_FUSED=0 against the default.
#    Predicted: -2 to -3 ms a step with the fused kernel (8 B an element of q and k not moved,
#    ~335 MB a layer), b / a ~1.005
# 3) per-op times (LORA4J_PHASE_TIMES) at 4 x 2048: fused with 128-row tiles, with 192-row tiles
#    (LORA4J_QK_ROPE_ROWS=192, added in the fiftieth session), and not (before 2; the faster
#    fused form is the one 2 pairs against the two steps)
# 4) test_realwidth_cuda (7B widths against the CPU engine), with what time is left
T0=$(date +%s)
git apply benchmarks/results/2026-12-05-session49/next/s50-qk-rope.patch || { echo "patch does not apply"; exit 1; }
left() { echo $(( ${LIMIT:-590} - ($(date +%s) - T0) )); }
save() { (cd /tmp && tar czf $OUT/logs.tgz o 2>/dev/null); }  # after each stage: what ran comes back if the call is cut off
O=/tmp/o; mkdir -p $O
B=native/build-s49
nvidia-smi --query-gpu=name,memory.total,power.limit --format=csv,noheader > $O/gpu.txt 2>&1; cat $O/gpu.txt
cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native \
  > /tmp/cfg.log 2>&1 && cmake --build $B --target lora4j_cuda test_ops_cuda test_engine_cuda test_realwidth_cuda bench_cuda > $O/build.log 2>&1 ||
  { grep -a error $O/build.log | head; tail -5 /tmp/cfg.log; }
echo "build at $(( $(date +%s) - T0 )) s"
for t in test_ops_cuda test_engine_cuda; do
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 150 ./$t > $O/$t.log 2>&1; echo "$t rc=$?")
  echo "  PASS $(grep -a -c PASS $O/$t.log) FAIL $(grep -a -c FAIL $O/$t.log) SKIP $(grep -a -c SKIP $O/$t.log)"
  grep -a "FAIL" $O/$t.log | head -8 | cut -c1-220
  grep -a -i "qk.rope" $O/$t.log | head -40 | cut -c1-200
done
echo "tests at $(( $(date +%s) - T0 )) s"; save
# three forms: fused with 128-row tiles (the default), fused with 192-row tiles, the two steps
for f in 128 192 0; do
  F=1; [ $f = 0 ] && F=0
  LORA4J_QK_ROPE_FUSED=$F LORA4J_QK_ROPE_ROWS=$f LORA4J_PHASE_TIMES=$O/phases-$f.jsonl LORA4J_BENCH_LAYERS=32 \
    LORA4J_BENCH_SETTINGS=4x2048-none timeout 100 $B/bench_cuda > $O/bench_phases-$f.jsonl 2>&1
  python3 benchmarks/phases.py $O/bench_phases-$f.jsonl $O/phases-$f.jsonl > $O/phases-$f.txt 2>&1
  echo "form $f:"; grep -a -i "ms per step\|rope\|q_proj\|k_proj\|frozen\|element" $O/phases-$f.txt | grep -v "dy B\|dX" | head -12 | cut -c1-110
done
# the q / k ops' ms a step in each form: the faster fused form goes into the pairs
qk() { grep -a -E "^self_attn\.(q|k)_proj|^rope forward" $O/phases-$1.txt | grep -v dX | awk '{s += $(NF-3)} END {printf "%.2f", s}'; }
Q128=$(qk 128); Q192=$(qk 192); Q0=$(qk 0)
echo "q + k (+ rope forward) ms a step: 128-row $Q128, 192-row $Q192, two steps $Q0"
ROWS=128; awk "BEGIN {exit !($Q192 < $Q128)}" && ROWS=192
echo "phases at $(( $(date +%s) - T0 )) s"; save
MEM=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
L=32; [ "${MEM:-0}" -lt 100000 ] && L=16   # two engines at once: 16 layers on an 80 GB card
LORA4J_QK_ROPE_ROWS=$ROWS LORA4J_BENCH_PAIRS=16 LORA4J_BENCH_AB=LORA4J_QK_ROPE_FUSED=0 LORA4J_BENCH_LAYERS=$L LORA4J_BENCH_SETTINGS=4x2048-none \
  timeout $(( $(left) > 170 ? 150 : $(left) - 20 )) $B/bench_cuda > $O/pairs.log 2>&1
echo "pairs ($L layers, form $ROWS against the two steps) at $(( $(date +%s) - T0 )) s"; grep -a train_step_pair $O/pairs.log | cut -c1-900; save
[ "$(left)" -gt 160 ] && (cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_REALWIDTH_STEPS=0 timeout $(( $(left) - 15 )) ./test_realwidth_cuda > $O/test_realwidth_cuda.log 2>&1; echo "test_realwidth_cuda rc=$?")
echo "  PASS $(grep -a -c PASS $O/test_realwidth_cuda.log) FAIL $(grep -a -c FAIL $O/test_realwidth_cuda.log)"
grep -a "FAIL" $O/test_realwidth_cuda.log | head -5 | cut -c1-200; tail -2 $O/test_realwidth_cuda.log | cut -c1-200
save
echo "done at $(( $(date +%s) - T0 )) s"
