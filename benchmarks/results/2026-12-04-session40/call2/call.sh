set -u
# Fortieth session, call 2: 1) build, every ctest binary but test_realwidth_cuda with
# LORA4J_REQUIRE_GPU=1 (test_decode_cuda now also: each engine's path from its phase-time op names,
# and the q/k fp16 weights kept by decode_start bitwise the per-call conversion, dropped after a
# lora_set), the Java GPU tests; 2) `lora4j generate` on the random 7B folder, 512 new tokens,
# greedy, LORA4J_DECODE_QK_CACHE 0 / 1 alternately (predicted -0.5 to -0.7 ms a decode step from
# call1's 6.6 ms; less if the step is bound by the host's launches); 3) one run under the kernel
# trace (GPU busy / idle inside the decode loop), one with LORA4J_PHASE_TIMES (per-op ms of a
# decode call).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
export OUT=/tmp/o2a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 280 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
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
GEN="$J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b --device cuda --prompt \"$P\" --max-new-tokens 512 --temperature 0 --seed 1"
for u in 0 1 0 1; do
  n=gen-qkcache$u-$(date +%s%N | tail -c 5)
  LORA4J_DECODE_QK_CACHE=$u timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
    --device cuda --prompt "$P" --max-new-tokens 512 --temperature 0 --seed 1 > $W/$n.out 2> $W/$n.err
  echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
LORA4J_PHASE_TIMES=$W/phases.jsonl timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
  --device cuda --prompt "$P" --max-new-tokens 512 --temperature 0 --seed 1 > $W/gen-phases.out 2> $W/gen-phases.err
echo "phases rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
wait $KB
CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace.txt \
  LORA4J_KERNEL_TRACE_PAUSE_US=20000 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate \
  --model /tmp/m7b --device cuda --prompt "$P" --max-new-tokens 512 --temperature 0 --seed 1 > $W/gen-trace.out 2> $W/gen-trace.err
echo "trace rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -8 | cut -c1-200
grep -a "^\[decode\]" $T | cut -c1-150
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err; do echo "$(basename $f .err): $(tail -1 $f | cut -c1-170)"; done
head -22 $W/phases.jsonl | cut -c1-150
head -30 $W/trace.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
