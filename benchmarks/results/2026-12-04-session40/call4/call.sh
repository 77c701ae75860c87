set -u
# Fortieth session, call 4: call 3 found test_ops_cuda stopping at gemv's in-place case (gemv_accepts
# refused beta 1 with c null, which means c = y; the engine's in-place accumulations fell back to
# cuBLASLt there too), so its gemv and decode-attention cases are first run here. Measured in
# call 3: the GEMV kernel at ~3.5 TB/s on gate / up / down (cuBLASLt ~3.9) and the decode
# attention at 15.3 + 2.2 us a layer (the old 11.8) at ~270 keys: a warp loaded each key's k and
# v just before using them. Now: gemv's grid the blocks the device holds, each warp looping over
# outputs, eight 16-byte loads in flight a lane; the decode attention loads four keys at once a
# warp, in shares of 32 keys. Same runs as call 3 (suite; generate default / GEMV=0 /
# ATTENTION=0 twice on the 13-token prompt, default / ATTENTION=0 on the ~2750-token one; trace).
# Predicted: default below call 3's 5.65 ms a decode step by ~0.3 (gemv at cuBLASLt's rate or
# better on the large weights) and ~0.2 (attention at ~6 us a layer).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w4; mkdir -p $W
export OUT=/tmp/o4a; mkdir -p $OUT
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
wait $KB
gen trace "CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace.txt LORA4J_KERNEL_TRACE_PAUSE_US=20000" "$P"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "^\[decode\]" $T | cut -c1-150
grep -a "^\[gemv\]\|^\[decode attention\]" $T | cut -c1-150 | head -60
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err $W/long-*.err $W/trace-*.err; do echo "$(basename $f .err): $(tail -1 $f | cut -c1-170)"; done
sed -n 1,12p $W/trace.txt | cut -c1-150
grep -a "share   total" -A14 $W/trace.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
