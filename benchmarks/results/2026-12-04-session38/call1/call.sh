set -u
# Thirty-eighth session, call 1: the tree at 2c34974 (RMSNorm's entries as templates on x's type,
# d53a5b9; the residual stream fp32 by default) with the CUDA backend packed again from this tree
# (scripts/gpu/pack-java.sh): every ctest binary (test_realwidth_cuda included) with
# LORA4J_REQUIRE_GPU=1, the Java GPU tests and the demo on the GPU. carry [".device"].
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w1; mkdir -p $W
export OUT=/tmp/o1a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 timeout 520 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$(find $W/suite -name tests.log | head -1)
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Not Run' $T | cut -c1-110
grep -a "\[golden\] hd128 lora grads\|hd128 (LORA4J_RESIDUAL=bf16) recompute .*bits" $T 2>/dev/null | head -8 | cut -c1-140
grep -a "realwidth.*worst\|worst.*5e-2" $T | head -6 | cut -c1-150
grep -a "FAIL" $T | head -8 | cut -c1-150
find $W/suite -name java-summary.log -exec sh -c 'grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" "$1"' _ {} \;
find $W/suite -name demo-cuda.log -exec sh -c 'grep -a "steps\|eval loss\|skipped" "$1" | tail -3 | cut -c1-200' _ {} \;
echo "total $(( $(date +%s) - T_START )) s"
