set -u
# Call 3: where sampled decoding's extra ~0.5 ms a token goes (call2: greedy 4.10, sampled on the
# device 4.60, on the host 4.55 ms a token). The kernel trace (CUPTI, built by run.sh's build step)
# over `lora4j generate` sampled on the device and on the host (LORA4J_DECODE_SAMPLE_DEVICE=0),
# 256 tokens each, the short prompt, the random 7B folder of run.sh's cli_model.
STEPS="build" CUDA_ARCHS=90 bash scripts/gpu/run.sh > /tmp/s45-b.log 2>&1 || { tail -20 /tmp/s45-b.log; exit 1; }
tar -C /tmp -xJf .device/jre.tar.xz; J=/tmp/lora4j-jre/bin/java
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/m7b \
  --tokenizer examples/models/tiny-mistral > /tmp/init.log 2>&1 || tail -5 /tmp/init.log
for form in device host; do
  dev=1; [ $form = host ] && dev=0
  LORA4J_DECODE_SAMPLE_DEVICE=$dev CUDA_INJECTION64_PATH=native/build-gpu/liblora4j_kernel_trace.so \
    LORA4J_KERNEL_TRACE_OUT=$OUT/trace-$form.txt LORA4J_KERNEL_TRACE_PAUSE_US=100000 timeout 200 \
    $J --enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/jcpp -jar .device/lora4j-cli.jar \
    generate --model /tmp/m7b --device cuda --prompt "Write a long story about a lighthouse keeper." \
    --max-new-tokens 256 --temperature 0.7 --top-p 0.9 --seed 1 > $OUT/gen-$form.out 2> $OUT/gen-$form.err
  echo "== $form rc=$?"; tail -2 $OUT/gen-$form.err
  grep -v "^ *[0-9.]*%.*gemv\|^$" $OUT/trace-$form.txt | head -30
  grep -a "sample\|argmax\|logits\|copy\|memcpy" $OUT/trace-$form.txt | head -10
done
