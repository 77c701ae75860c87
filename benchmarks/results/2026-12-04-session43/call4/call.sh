set -u
# Forty-third session, call 4: gemv's split form for few rows (gemv_split_kernel: 8 warps a row
# for N <= 256; call3's trace put a 7B adapter's four A products a layer at 9.7 us each, 1.24 ms
# of a 5.8 ms step). 1) build, test_ops_cuda (the split cases against their CPU twin, bitwise) and
# test_decode_cuda (LORA4J_DECODE_GEMV_SPLIT=0 as engine G) with LORA4J_REQUIRE_GPU=1;
# 2) `lora4j generate`, random 7B folder, 512 tokens greedy: no adapter, the random rank-16
# adapter, and the adapter with LORA4J_DECODE_GEMV_SPLIT=0 (main's order), three runs each and the
# long prompt once; 3) a kernel trace with the adapter. Predicted: with the adapter 5.8 -> ~5.0 ms
# a token (the A products ~3 us each); without it unchanged (no product of <= 256 rows).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w4; mkdir -p $W
export OUT=/tmp/o4a; mkdir -p $OUT
A=/tmp/lora4j-cli/a7b
(cmake -S native -B /tmp/kb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLORA4J_TESTS=ON > $W/kb-configure.log 2>&1 && cmake --build /tmp/kb --target lora4j_kernel_trace > $W/kb-build.log 2>&1; echo "trace lib rc=$?" >> $W/sum.log) &
KB=$!
STEPS="build test gen" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" \
  GEN_FORMS="default lora=ADAPTER=$A lora-nosplit=ADAPTER=$A,LORA4J_DECODE_GEMV_SPLIT=0" \
  timeout 420 bash scripts/gpu/run.sh > $W/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/run && tar -C $W/run -xzf $OUT/logs.tgz 2>/dev/null
wait $KB
J=/tmp/lora4j-jre/bin/java
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
P="Write a long story about a lighthouse keeper."
CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace-lora.txt \
  LORA4J_KERNEL_TRACE_PAUSE_US=20000 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate \
  --model /tmp/lora4j-cli/m7b --adapter $A --device cuda --prompt "$P" --max-new-tokens 512 --temperature 0 \
  --seed 1 > $W/trace-lora.out 2> $W/trace-lora.err
echo "trace rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $W/run.log | cut -c1-110
grep -a "FAIL" $W/run.log | head -12 | cut -c1-200
grep -a "split\|SPLIT" $W/run.log | head -16 | cut -c1-160
grep -aE -A7 '^form ' $W/run.log
echo "== trace lora: $(tail -1 $W/trace-lora.err | sed 's/.*decode steps in //' | cut -c1-80)"
sed -n 16,34p $W/trace-lora.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
