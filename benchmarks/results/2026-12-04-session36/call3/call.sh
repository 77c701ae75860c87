set -u
# Thirty-sixth session, call 3 (main as committed before the call): the whole GPU suite on the
# backward merged as 27e5554, never run whole (every ctest binary with LORA4J_REQUIRE_GPU=1, the 7B real-width cases among
# them; the sanitizers' cases; the Java GPU tests and the demo on the GPU; the last whole-suite run
# was the thirty-fifth session's call2, on the chunked backward before 27e5554), then the user's
# path at 4 x 2048 without recompute beside the engine benchmark and the reference stack in this
# call (the README table's row). carry [".device"] (scripts/gpu/pack-java.sh), timeout ~580 s;
# scripts/gpu/aside.sh out benchmarks/results/2026-12-04-session36 before, aside.sh back after.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
export OUT=/tmp/o2a; mkdir -p $OUT
STEPS="build test cudasan java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 timeout 380 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test cudasan java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
export OUT=/tmp/o2b; mkdir -p $OUT
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048 BENCH_SETTINGS=4x2048 HF_SETTINGS=4x2048 timeout 200 bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
cp $OUT/*.jsonl $OUT/*.json $W/cli/ 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$(find $W/suite -name tests.log | head -1)
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Not Run' $T | cut -c1-110
grep -aE 'Test +#[0-9]+:' $T | awk '{print $4, $6, $7}' | tr '\n' ';' | cut -c1-900; echo
grep -a "\[golden\] hd128 lora grads" $W/suite/ctest.log $T 2>/dev/null | head -4 | cut -c1-140
grep -a "cudasan\|FAIL" $W/suite-run.log | head -12
find $W/suite -name java-summary.log -exec tail -6 {} \;
find $W/suite -name demo-cuda.log -exec sh -c 'grep -a "steps\|eval loss\|skipped" "$1" | tail -3 | cut -c1-200' _ {} \;
tail -6 $W/suite-run.log | cut -c1-200
grep -a "FAIL\|failed" $W/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' $W/cli-run.log | head -24
grep -a "tokens_per_s" $W/cli-run.log | cut -c1-400 | head -4
echo "total $(( $(date +%s) - T_START )) s"
