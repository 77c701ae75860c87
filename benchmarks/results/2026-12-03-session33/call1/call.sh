set -u
# Next session, first call, on main as left by the thirty-second session (the backward's dQ
# staging without bank conflicts merged after its op test, memcheck and timing only): every
# ctest test with LORA4J_REQUIRE_GPU=1 (test_engine_cuda's hd128 golden among them: worst LoRA
# gradient 2.46e-2 / 2.52e-2 / 2.63e-2 before the change, expected unchanged), the sanitizers'
# cases, then run.sh's ops step on the attention ops (bench_ops, the burst table and the
# contract's sustained table against cuDNN: expected about 0.97x / 0.95x for the backward).
T_START=$(date +%s)
W=/tmp/w1; mkdir -p $W
STEPS="build test cudasan ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" OUT=$W \
  timeout 560 bash scripts/gpu/run.sh > $W/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
mkdir -p $W/x && tar -C $W/x -xzf $W/logs.tgz 2>/dev/null
grep -a "tests passed\|tests failed\|\*\*\*" $W/x/ctest.log | head -8
grep -a "\[golden\] hd128 lora grads" $W/x/ctest.log | head -4
grep -a "ERROR SUMMARY" $W/x/cudasan-*.log | head
grep -a -A8 "sustained alike" $W/run.log
