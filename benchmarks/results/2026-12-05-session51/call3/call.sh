set -u
# Fifty-first session, third call: the conversions 8 values a thread in both directions
# (f32_to_bf16 as call2 ran it, bf16_to_f32 added: a layer's checkpoint restored under
# recompute) through the GPU tests that reach them (test_ops_cuda's bit checks, the engine's
# goldens in every recompute mode, offload, graphs, the op bench against its CPU twin), then the
# contract's attention table against cuDNN again (call2 gave the 1 x 8192 backward 0.9975x).
# No carry. Run from the repository root: LIMIT=560 bash benchmarks/results/2026-12-05-session51/next/s51c3.sh
T0=$(date +%s)
LIMIT=${LIMIT:-560}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
W=/tmp/w3; mkdir -p $W
B=native/build-gpu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 240 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) > 280 ? 200 : $(left) - 80 )) ctest --timeout 150 \
  -R "test_ops_cuda|test_engine_cuda|test_offload_cuda|test_graphs_cuda|test_golden|test_op_bench_cuda") > $W/ctest.log 2>&1
echo "ctest rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
tar -C $W -czf $OUT/logs.tgz --exclude=b .
if [ "$(left)" -gt 100 ]; then
  timeout $(( $(left) - 15 )) python3 benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 \
    > $W/attention_sustained.jsonl 2> $W/attention_sustained.err
  python3 benchmarks/compare.py --attention-sustained $W/attention_sustained.jsonl > $W/attention-sustained-vs-cudnn.txt
fi
tar -C $W -czf $OUT/logs.tgz --exclude=b .
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
cat $W/sum.log
grep -aE "tests passed|Skipped|Failed|\*\*\*|Test +#" $W/ctest.log | head -12
grep -a "Start" -c $W/ctest.log
cat $W/attention-sustained-vs-cudnn.txt 2>/dev/null
echo "done at $(( $(date +%s) - T0 )) s"
