set -u
# Forty-first session, call 2: gemv_pairs (a decode step's q/k/v + RoPE in one launch, gate/up +
# SwiGLU in one launch; LORA4J_DECODE_FUSED=0 the passes apart) and RoPE's arithmetic written out
# once (rope_cos_sin / rope_rotate). 1) build, every ctest binary but test_realwidth_cuda with
# LORA4J_REQUIRE_GPU=1, the Java GPU tests; 2) `lora4j generate`, random 7B folder, 512 tokens
# greedy, 13-token prompt: default and LORA4J_DECODE_FUSED=0 alternately, three times each; the
# ~2750-token prompt once each; 3) a kernel trace of the default. Predicted: -0.4 to -0.6 ms a
# step (q/k/v: 48 MB in one launch instead of ~29 us of kernels in five; gate/up: two launches
# and the SwiGLU pass fewer).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
export OUT=/tmp/o2a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 300 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
(cmake -S native -B /tmp/kb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLORA4J_TESTS=ON > $W/kb-configure.log 2>&1 && cmake --build /tmp/kb --target lora4j_kernel_trace > $W/kb-build.log 2>&1; echo "trace lib rc=$?" >> $W/sum.log) &
KB=$!
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
[ -d /tmp/m7b ] || $J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
P="Write a long story about a lighthouse keeper."
LONG=$(for i in $(seq 1 150); do printf 'The keeper climbed the stairs at dusk and lit the lamp number %d. ' $i; done)
gen() {  # name env prompt
  n=$1-$(date +%s%N | tail -c 5)
  env $2 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
    --device cuda --prompt "$3" --max-new-tokens 512 --temperature 0 --seed 1 > $W/$n.out 2> $W/$n.err
  echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
for r in 1 2 3; do
  gen gen-default LORA4J_NONE=1 "$P"
  gen gen-fused0 LORA4J_DECODE_FUSED=0 "$P"
done
gen long-default LORA4J_NONE=1 "$LONG"
gen long-fused0 LORA4J_DECODE_FUSED=0 "$LONG"
wait $KB
gen trace "CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace.txt LORA4J_KERNEL_TRACE_PAUSE_US=20000" "$P"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "^\[decode\]" $T | cut -c1-150
echo "gemv / pairs / decode attention lines: $(grep -a "^\[gemv\]\|^\[gemv pairs\]\|^\[decode attention\]" $T | grep -ac PASS) PASS, $(grep -a "^\[gemv\]\|^\[gemv pairs\]\|^\[decode attention\]" $T | grep -avc PASS) other"
grep -a "^\[gemv pairs\]" $T | grep -a "float64" | cut -c1-150
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err $W/long-*.err $W/trace-*.err; do echo "$(basename $f .err): $(tail -1 $f | cut -c1-150)"; done
for a in $W/gen-default-*.out; do for b in $W/gen-fused0-*.out; do cmp -s $a $b && echo "same text: $(basename $a) $(basename $b)" || echo "TEXT DIFFERS: $(basename $a) $(basename $b)"; done; done | sort | uniq -c | head -3
sed -n 1,12p $W/trace.txt | cut -c1-150
grep -a "share   total" -A16 $W/trace.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
