set -u
# Fortieth session, call 3: 1) build, every ctest binary but test_realwidth_cuda with
# LORA4J_REQUIRE_GPU=1 (new: test_ops_cuda's gemv and decode attention against their CPU twins;
# test_decode_cuda's LORA4J_DECODE_GEMV / LORA4J_DECODE_ATTENTION A/Bs), the Java GPU tests;
# 2) `lora4j generate` on the random 7B folder, 512 new tokens, greedy: the default (GEMV kernel
# and decode attention), LORA4J_DECODE_GEMV=0, LORA4J_DECODE_ATTENTION=0 in turn, twice, on the
# 13-token prompt; then a ~3000-token prompt, default and LORA4J_DECODE_ATTENTION=0.
# Predicted (call2: 5.74 ms a decode step, GPU busy 5.0): GEMV -0.8 to -0.9 ms (one-row products
# at ~4.3 TB/s, no split-K reductions); attention -0.2 to -0.3 ms at ~270 keys, more at ~3000.
# 3) one default run under the kernel trace, one with LORA4J_PHASE_TIMES.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w3; mkdir -p $W
export OUT=/tmp/o3a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 300 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
(cmake -S native -B /tmp/kb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLORA4J_TESTS=ON > $W/kb-configure.log 2>&1 && cmake --build /tmp/kb --target lora4j_kernel_trace > $W/kb-build.log 2>&1; echo "trace lib rc=$?" >> $W/sum.log) &
KB=$!
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
$J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
P="Write a long story about a lighthouse keeper."
LONG=$(for i in $(seq 1 150); do printf 'The keeper climbed the stairs at dusk and lit the lamp number %d. ' $i; done)
gen() {  # name env prompt
  n=$1-$(date +%s%N | tail -c 5)
  env $2 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
    --device cuda --prompt "$3" --max-new-tokens 512 --temperature 0 --seed 1 > $W/$n.out 2> $W/$n.err
  echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
for r in 1 2; do
  gen gen-default LORA4J_NONE=1 "$P"
  gen gen-gemv0 LORA4J_DECODE_GEMV=0 "$P"
  gen gen-attn0 LORA4J_DECODE_ATTENTION=0 "$P"
done
gen long-default LORA4J_NONE=1 "$LONG"
gen long-attn0 LORA4J_DECODE_ATTENTION=0 "$LONG"
gen phases LORA4J_PHASE_TIMES=$W/phases.jsonl "$P"
wait $KB
gen trace "CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace.txt LORA4J_KERNEL_TRACE_PAUSE_US=20000" "$P"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "^\[decode\]" $T | cut -c1-150
grep -a "^\[gemv\]\|^\[decode attention\]" $T | awk '{print}' | cut -c1-150 | head -40
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err $W/long-*.err $W/phases-*.err $W/trace-*.err; do echo "$(basename $f .err): $(tail -1 $f | cut -c1-170)"; done
head -16 $W/phases.jsonl | cut -c1-150
sed -n 1,12p $W/trace.txt | cut -c1-150
grep -a "share   total" -A14 $W/trace.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
