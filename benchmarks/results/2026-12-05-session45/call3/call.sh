set -u
# Call 3 (first half of the device time left: the experiment, then the suite in what remains).
# 1) next/s46-sample-lanes.patch (order_boundary's histogram a copy a lane, the bin found by a warp
# scan) built in a copy of the tree: test_sample_cuda, then `lora4j generate` sampled
# (--temperature 0.7 --top-p 0.9) with that plugin (LORA4J_CUDA_LIBRARY) on the device
# (LORA4J_DECODE_SAMPLE_DEVICE=1) and on the host, under the kernel trace (CUPTI), and timed by
# gen.sh beside greedy. Call2: greedy 4.10, sampled on the device 4.60, on the host 4.55 ms a token.
# 2) The final tree (the four decode patches, the host's draw the default): every ctest binary with
# LORA4J_REQUIRE_GPU=1 and the Java GPU tests, cut at the call's deadline.
T0=$(date +%s)
rm -rf /tmp/lanes && mkdir /tmp/lanes && cp -r native cmake /tmp/lanes/ && (cd /tmp/lanes && patch -p1 < $OLDPWD/benchmarks/results/2026-12-05-session45/next/s46-sample-lanes.patch > /dev/null) || exit 1
cmake -S /tmp/lanes/native -B /tmp/lanes/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/lanes-cfg.log 2>&1 &&
  cmake --build /tmp/lanes/b --target lora4j_cuda test_sample_cuda lora4j_kernel_trace > /tmp/lanes-build.log 2>&1 || { grep -a error /tmp/lanes-build.log | head; tail -5 /tmp/lanes-cfg.log; exit 1; }
echo "lanes build at $(( $(date +%s) - T0 )) s"
L=/tmp/lanes/b/liblora4j_cuda.so
(cd /tmp/lanes/b && LORA4J_REQUIRE_GPU=1 ./test_sample_cuda > $OUT/test_sample_cuda-lanes.log 2>&1; echo "test_sample_cuda (lanes) rc=$?")
grep -a "FAIL\|PASS" $OUT/test_sample_cuda-lanes.log | cut -c1-120 | head -8
tar -C /tmp -xJf .device/jre.tar.xz 2>/dev/null; J=/tmp/lora4j-jre/bin/java
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b \
  --tokenizer examples/models/tiny-mistral > /tmp/init.log 2>&1 || tail -5 /tmp/init.log
for form in device host; do
  dev=1; [ $form = host ] && dev=0
  LORA4J_CUDA_LIBRARY=$L LORA4J_DECODE_SAMPLE_DEVICE=$dev CUDA_INJECTION64_PATH=/tmp/lanes/b/liblora4j_kernel_trace.so \
    LORA4J_KERNEL_TRACE_OUT=$OUT/trace-$form.txt LORA4J_KERNEL_TRACE_PAUSE_US=100000 timeout 100 \
    $J --enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/jcpp -jar .device/lora4j-cli.jar \
    generate --model /tmp/lora4j-cli/m7b --device cuda --prompt "Write a long story about a lighthouse keeper." \
    --max-new-tokens 256 --temperature 0.7 --top-p 0.9 --seed 1 > $OUT/trace-gen-$form.out 2> $OUT/trace-gen-$form.err
  echo "== trace $form rc=$?"; tail -1 $OUT/trace-gen-$form.err
  grep -a "sample\|argmax\|busy\|idle" $OUT/trace-$form.txt | head -8 | cut -c1-150
done
LORA4J_CUDA_LIBRARY=$L GEN_FORMS="default sample=TEMPERATURE=0.7,LORA4J_DECODE_SAMPLE_DEVICE=1 sample-host=TEMPERATURE=0.7,LORA4J_DECODE_SAMPLE_DEVICE=0" \
  GEN_ROUNDS=2 GEN_LONG=0 JAVA=$J bash scripts/gpu/gen.sh $OUT/gen
echo "experiment done at $(( $(date +%s) - T0 )) s"
left=$(( ${CALL_SECONDS:-400} - ($(date +%s) - T0) ))
[ $left -lt 90 ] && { echo "no time left for the suite"; exit 0; }
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="" timeout $left bash scripts/gpu/run.sh > /tmp/s45-suite.log 2>&1
echo "suite rc=$? at $(( $(date +%s) - T0 )) s (limit $left s)"; cp /tmp/s45-suite.log $OUT/suite.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Not Run|tests successful|tests skipped|Test +#' /tmp/s45-suite.log | cut -c1-110 | tail -40
