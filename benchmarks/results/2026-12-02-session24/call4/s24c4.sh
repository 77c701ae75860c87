set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-420}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-fourth session, call4: cuBLASLt's k-th heuristic algorithm instead of its first
# (LORA4J_GEMM_ALGO=k) under the card's steady power cap: per-op phases at k = 0..3, then paired
# whole steps of k = 1 and k = 2 against k = 0.
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
grep -E "error" $W/build.log | head -5
B=native/build-gpu
for k in 0 1 2 3; do
  LORA4J_GEMM_ALGO=$k LORA4J_PHASE_TIMES=$W/ph-$k.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 45 $B/bench_cuda > $W/bph-$k.jsonl 2>&1
  python3 benchmarks/phases.py $W/bph-$k.jsonl $W/ph-$k.jsonl > $W/phases-$k.txt 2>&1
  echo "phases k=$k at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
: > $W/pairs.log
for k in 1 2; do
  [ $(left) -lt 75 ] && break
  LORA4J_BENCH_PAIRS=20 LORA4J_BENCH_AB="LORA4J_GEMM_ALGO=$k" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 70 $B/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/k0 /" >> $W/pairs.log
  echo "pairs k=$k at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
for k in 0 1 2 3; do echo "== k=$k"; grep -a "train_step\"" $W/bph-$k.jsonl | head -1 | grep -o '"s":[^,]*,\|"mean_w":[^,]*,\|"sm_mhz":[^,]*,' | tr -d '\n'; echo; grep -a "ms per step\|frozen GEMMs\|mlp\.\|self_attn\.q_proj \|self_attn.qkv dX\|self_attn.o_proj\|lm_head" $W/phases-$k.txt | cut -c1-100; done
echo "== pairs"; python3 benchmarks/ab.py $W/pairs.log 2>&1 | tail -3 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
