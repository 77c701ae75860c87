set -u
# Call 3: where sampled decoding's extra ~0.5 ms a token goes (call2: greedy 4.10, sampled on the
# device 4.60, on the host 4.55 ms a token), with order_boundary's histogram now in 32 copies a bin
# (one a lane: no two lanes of a warp add to one address) and its bin search by warp 0.
# Build, test_sample_cuda (the kernel bit for bit against sample_token), the kernel trace (CUPTI)
# of `lora4j generate` sampled on the device and on the host (LORA4J_DECODE_SAMPLE_DEVICE=0), 256
# tokens, then gen.sh's timing of greedy, sampled on the device and on the host; then the whole suite.
patch -p1 < benchmarks/results/2026-12-05-session45/next/s46-sample-lanes.patch || exit 1  # the jar has it
STEPS="build" CUDA_ARCHS=90 bash scripts/gpu/run.sh > /tmp/s45-b.log 2>&1 || { tail -20 /tmp/s45-b.log; exit 1; }
(cd native/build-gpu && LORA4J_REQUIRE_GPU=1 ./test_sample_cuda > $OUT/test_sample_cuda.log 2>&1; echo "test_sample_cuda rc=$?")
grep -a "FAIL\|PASS" $OUT/test_sample_cuda.log | cut -c1-120 | head -12
cuobjdump -sass native/build-gpu/liblora4j_cuda.so 2>/dev/null | grep -o "ATOMS[.A-Z0-9]*" | sort | uniq -c
tar -C /tmp -xJf .device/jre.tar.xz; J=/tmp/lora4j-jre/bin/java
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b \
  --tokenizer examples/models/tiny-mistral > /tmp/init.log 2>&1 || tail -5 /tmp/init.log
for form in device host; do
  dev=1; [ $form = host ] && dev=0
  LORA4J_DECODE_SAMPLE_DEVICE=$dev CUDA_INJECTION64_PATH=native/build-gpu/liblora4j_kernel_trace.so \
    LORA4J_KERNEL_TRACE_OUT=$OUT/trace-$form.txt LORA4J_KERNEL_TRACE_PAUSE_US=100000 timeout 200 \
    $J --enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/jcpp -jar .device/lora4j-cli.jar \
    generate --model /tmp/lora4j-cli/m7b --device cuda --prompt "Write a long story about a lighthouse keeper." \
    --max-new-tokens 256 --temperature 0.7 --top-p 0.9 --seed 1 > $OUT/trace-gen-$form.out 2> $OUT/trace-gen-$form.err
  echo "== trace $form rc=$?"; tail -1 $OUT/trace-gen-$form.err
  grep -a "sample\|argmax\|share\|busy\|idle" $OUT/trace-$form.txt | head -12 | cut -c1-150
done
GEN_FORMS="default sample=TEMPERATURE=0.7,LORA4J_DECODE_SAMPLE_DEVICE=1 sample-host=TEMPERATURE=0.7,LORA4J_DECODE_SAMPLE_DEVICE=0" \
  GEN_ROUNDS=2 GEN_LONG=0 JAVA=$J bash scripts/gpu/gen.sh $OUT/gen
# then every ctest binary with LORA4J_REQUIRE_GPU=1 and the Java GPU tests on this tree (the
# session's final kernels)
STEPS="test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="" timeout 380 bash scripts/gpu/run.sh > /tmp/s45-suite.log 2>&1
echo "suite rc=$?"; cp /tmp/s45-suite.log $OUT/suite.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Not Run|tests successful|tests skipped' /tmp/s45-suite.log | cut -c1-110 | head -20
