set -u
# Thirty-eighth session, call 2: the training forward and backward as CUDA graphs
# (LORA4J_CUDA_GRAPHS, off by default in this build). Build (sm_90), then test_graphs_cuda (graphs
# against eager launches: losses bitwise, gradients bitwise or within 3x the control's run-to-run
# difference, the capture / launch counts exact), test_engine_cuda and test_offload_cuda; then
# bench_cuda's paired A/B (graphs on in engine b) on the 32-layer Mistral-7B step at 4 x 2048
# without recompute and with attention recompute offloaded, and at 1 x 1024 and 1 x 512 without
# recompute (shorter kernels: the boundaries weigh more), with the graph counts of each engine.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
B=native/build-gpu
export OUT=/tmp/o2a; mkdir -p $OUT
STEPS="build" CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $OUT -czf $W/build-logs.tgz . 2>/dev/null
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 240 ctest -V -R "test_graphs_cuda|test_engine_cuda|test_offload_cuda") > $W/ctest.log 2>&1
echo "ctest rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for setting in 4x2048-none 4x2048-attention 1x1024-none 1x512-none; do
  pairs=20; [ "${setting#1x}" != "$setting" ] && pairs=30
  rm -f $W/stats-$setting.json
  LORA4J_CUDA_GRAPHS_STATS=$W/stats-$setting.json LORA4J_BENCH_AB=LORA4J_CUDA_GRAPHS=1 \
    LORA4J_BENCH_PAIRS=$pairs LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=$setting \
    timeout 150 $B/bench_cuda > $W/ab-$setting.log 2>&1
  echo "ab $setting rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
grep -aE "tests passed|tests failed|\*\*\*Failed|Skipped" $W/ctest.log | cut -c1-120
grep -a "FAIL" $W/ctest.log | head -12 | cut -c1-220
grep -a "graphs captured" $W/ctest.log | cut -c1-260
for setting in 4x2048-none 4x2048-attention 1x1024-none 1x512-none; do
  echo "== $setting"; grep -a "train_step_pair\|error" $W/ab-$setting.log | head -3 | cut -c1-600
  cat $W/stats-$setting.json 2>/dev/null
done
echo "total $(( $(date +%s) - T_START )) s"
