set -u
# Forty-third session, call 3, on c7bc375 + the gen step's adapter forms: 1) build, every ctest
# binary with LORA4J_REQUIRE_GPU=1 and the Java GPU tests (the forty-second session's f051f2c and
# b6e2e92 and this session's device greedy path on the whole suite); 2) `lora4j generate`, random
# 7B folder, 512 tokens greedy, without and with a random rank-16 adapter on every linear layer
# (scripts/gpu/random-adapter.py; what a user runs after fine-tuning, never timed before), three
# runs each at the 13-token prompt and one at ~2,750 tokens; 3) a kernel trace of each (per-kernel
# times, so that what the adapter adds a step is named).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w3; mkdir -p $W
export OUT=/tmp/o3a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="" timeout 420 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
(cmake -S native -B /tmp/kb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLORA4J_TESTS=ON > $W/kb-configure.log 2>&1 && cmake --build /tmp/kb --target lora4j_kernel_trace > $W/kb-build.log 2>&1; echo "trace lib rc=$?" >> $W/sum.log) &
KB=$!
export OUT=/tmp/o3b; mkdir -p $OUT
A=/tmp/lora4j-cli/a7b
STEPS="gen" GEN_FORMS="default lora=ADAPTER=$A" timeout 200 bash scripts/gpu/run.sh > $W/gen-run.log 2>&1
echo "gen rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/gen && tar -C $W/gen -xzf $OUT/logs.tgz 2>/dev/null
wait $KB
J=/tmp/lora4j-jre/bin/java
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
P="Write a long story about a lighthouse keeper."
for f in base lora; do
  ad=""; [ $f = lora ] && ad="--adapter $A"
  CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace-$f.txt \
    LORA4J_KERNEL_TRACE_PAUSE_US=20000 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate \
    --model /tmp/lora4j-cli/m7b $ad --device cuda --prompt "$P" --max-new-tokens 512 --temperature 0 \
    --seed 1 > $W/trace-$f.out 2> $W/trace-$f.err
  echo "trace $f rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
grep -aE -A6 '^form ' $W/gen-run.log
for f in base lora; do echo "== trace $f: $(tail -1 $W/trace-$f.err | sed 's/.*decode steps in //' | cut -c1-80)"; sed -n 1,16p $W/trace-$f.txt | cut -c1-150; done
echo "total $(( $(date +%s) - T_START )) s"
