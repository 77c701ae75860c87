set -u
# Twenty-sixth session, call 3: branch swiglu-dx-mc with the ping-pong forms dropped (dx form 1
# the default) and the gate/up forward + SwiGLU forward fused (swiglu_gu_sm90.cu, the default).
# 1. build; 2. test_ops_cuda (swiglu_gu with the accumulation bound), test_engine_cuda,
# test_golden, test_nf4_cuda; 3. the user's path: lora4j train at 4 x 2048 beside the engine
# benchmark and the reference stack in this call; 4. paired whole steps, b = LORA4J_SWIGLU_GU_FUSED=0.
T_START=$(date +%s)
export OUT
LIM=${LIM:-560}
left() { echo $(( LIM - $(date +%s) + T_START )); }
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 150 ctest -V -R "test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda" > $W/tests.log 2>&1; echo "tests rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS="4x2048" BENCH_SETTINGS=4x2048 HF_SETTINGS="4x2048" timeout $(( $(left) - 100 )) bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "cli run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
: > $W/pairs.log
if [ $(left) -gt 70 ]; then
  LORA4J_BENCH_PAIRS=24 LORA4J_BENCH_AB=LORA4J_SWIGLU_GU_FUSED=0 LORA4J_BENCH_LAYERS=32 \
    LORA4J_BENCH_SETTINGS=4x2048-none timeout $(( $(left) - 8 )) $B/bench_cuda 2>&1 | grep '"train_step_pair"' >> $W/pairs.log
fi
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
echo "== tests"; grep -a "Passed\|Failed" $W/tests.log | cut -c1-120 | head -8; grep -a "FAIL" $W/tests.log | cut -c1-220 | head -10; grep -ac PASS $W/tests.log
grep -a "hd128 lora grads\|accumulation bound" $W/tests.log | cut -c1-200 | head -10
echo "== user's path"; grep -a "FAIL\|rc=\|failed" $W/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' $W/cli-run.log | head -24
echo "== pairs (a = gu fused)"; python3 benchmarks/ab.py $W/pairs.log 2>&1 | tail -2 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
