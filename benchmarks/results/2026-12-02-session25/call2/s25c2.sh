set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-570}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-fifth session, call2, this tree = main with the fused down dX + SwiGLU backward (two forms). 1. test_ops_cuda, test_engine_cuda,
# test_golden, test_nf4_cuda, the fused op alone over its two forms;
# 2. the 7B v0.3 real-width cases; 3. the user's path: lora4j train at 4 x 2048 (full rows,
# padded rows) beside the engine benchmark and the reference stack at 4 x 2048, in this call.
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 150 ctest -V -R "test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda" > /tmp/tests.log 2>&1; echo "tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
(cd $B && LORA4J_OPS_ONLY=swiglu_dx LORA4J_REQUIRE_GPU=1 timeout 60 ./test_ops_cuda > /tmp/ops-sdx.log 2>&1; echo "ops swiglu_dx rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
(cd $B && LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout 200 ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS="4x2048,4x2048-padded" BENCH_SETTINGS=4x2048 HF_SETTINGS="4x2048" timeout $(( $(left) - 15 )) bash scripts/gpu/run.sh > /tmp/cli-run.log 2>&1
echo "cli run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
mkdir -p /tmp/cli && tar -C /tmp/cli -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz; cp /tmp/cli-run.log /tmp/cli/
(cd /tmp/cli && tar -czf $OUT/cli-logs.tgz .)
grep -a "FAIL\|Passed\|Failed\|hd128 lora grads" /tmp/tests.log | cut -c1-230 > /tmp/tests-key.txt
tail -5 /tmp/realwidth.log > /tmp/realwidth-tail.txt
cp /tmp/sum.log /tmp/tests-key.txt /tmp/realwidth-tail.txt $OUT/
gzip -c /tmp/tests.log > $OUT/tests.log.gz
gzip -c /tmp/ops-sdx.log > $OUT/ops-sdx.log.gz
gzip -c /tmp/realwidth.log > $OUT/realwidth.log.gz
cat /tmp/sum.log
echo "== tests"; grep -a "Passed\|Failed" /tmp/tests.log | cut -c1-120 | head -8; grep -a "FAIL" /tmp/tests.log | cut -c1-220 | head -10; grep -ac PASS /tmp/tests.log
grep -a "hd128 lora grads" /tmp/tests.log | cut -c1-200 | head -4
echo "== ops swiglu_dx"; grep -a FAIL /tmp/ops-sdx.log | head -5; tail -1 /tmp/ops-sdx.log
echo "== realwidth"; grep -a "FAIL" /tmp/realwidth.log | head -6; tail -2 /tmp/realwidth.log
echo "== user's path"; grep -a "FAIL\|rc=\|failed" /tmp/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' /tmp/cli-run.log | head -24
echo "total $(( $(date +%s) - T_START )) s"
