set -u
# Fifty-first session, second call: where the 1 x 8192 attention backward's ~46 us behind
# cuDNN's lies (pre-pass, main kernel, dQ conversion against cuDNN's kernels, each held alone in
# its process under the CUPTI kernel trace), and f32_to_bf16 8 values a thread (the dQ
# conversion, a layer's checkpoint under recompute) against the scalar form
# (LORA4J_F32_TO_BF16=scalar): test_ops_cuda's bit checks, the held op A/B in three rounds.
# Prediction: the conversion at 1 x 8192 moves 201 MB (134 read, 67 written), ~63 us at
# ~3.2 TB/s; the scalar form (4-byte loads, 2-byte stores, one value a thread) is expected at
# ~75-85% of that rate, so -5 to -15 us a call (0.2-0.5% of the op).
# No carry. Run from the repository root: LIMIT=560 bash benchmarks/results/2026-12-05-session51/next/s51c2.sh
T0=$(date +%s)
LIMIT=${LIMIT:-560}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
W=/tmp/w2; mkdir -p $W
B=native/build-gpu
N=benchmarks/results/2026-12-05-session51/next
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 150 ./test_ops_cuda) > $W/test_ops.log 2>&1
echo "test_ops_cuda rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
held() {
  if [ $1 = main ]; then export LORA4J_F32_TO_BF16=scalar; else unset LORA4J_F32_TO_BF16; fi
  timeout 30 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  unset LORA4J_F32_TO_BF16
}
held main 1; held x8 1; held x8 2; held main 2; held main 3; held x8 3
echo "held at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
TRACE=$B/liblora4j_kernel_trace.so
for shape in "1 8192" "4 2048"; do
  for side in ours cudnn; do
    tag=$side-${shape/ /x}
    if [ "$(left)" -gt 60 ]; then
      CUDA_INJECTION64_PATH=$TRACE LORA4J_KERNEL_TRACE_OUT=$W/trace-$tag.txt timeout 60 \
        python3 $N/breakdown.py $B/liblora4j_bench.so $side $shape 4 > $W/bd-$tag.log 2>&1
      echo "trace $tag rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
    fi
  done
done
tar -C $W -czf $OUT/logs.tgz --exclude=b .
if [ "$(left)" -gt 100 ]; then
  timeout $(( $(left) - 20 )) python3 benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 \
    > $W/attention_sustained.jsonl 2> $W/attention_sustained.err
  python3 benchmarks/compare.py --attention-sustained $W/attention_sustained.jsonl > $W/attention-sustained-vs-cudnn.txt
fi
tar -C $W -czf $OUT/logs.tgz --exclude=b .
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
cat $W/sum.log
echo "f32_to_bf16 checks: $(grep -ac "f32_to_bf16.*PASS" $W/test_ops.log) pass, $(grep -ac "f32_to_bf16.*FAIL" $W/test_ops.log) fail"
grep -a "FAIL" $W/test_ops.log | head -5; tail -n 2 $W/test_ops.log
python3 benchmarks/compare.py --held-ab $W/held.jsonl
for f in $W/trace-*.txt; do echo "== $f"; grep -a -iE "attn|cudnn|convert|f32_to_bf16|delta|fmha|sdpa|dot_do|memset" $f | head -12 | cut -c1-150; done
cat $W/attention-sustained-vs-cudnn.txt 2>/dev/null
echo "done at $(( $(date +%s) - T0 )) s"
