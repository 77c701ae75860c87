set -u
# Thirty-ninth session, call 6: where a decode step's 7.8 ms go (call5; floor ~3.4 ms): `lora4j
# generate` (512 new tokens, the random 7B folder) under the CUPTI kernel trace
# (liblora4j_kernel_trace.so, CUDA_INJECTION64_PATH): the GPU's busy and idle time between kernels
# (pauses over 20 ms split segments, so the decode loop is one) and the kernels by total time.
T_START=$(date +%s)
W=/tmp/w6; mkdir -p $W
cmake -S native -B /tmp/kb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLORA4J_TESTS=ON > $W/configure.log 2>&1 && cmake --build /tmp/kb --target lora4j_kernel_trace > $W/build.log 2>&1
echo "trace lib rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
$J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
echo "init rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace.txt \
  LORA4J_KERNEL_TRACE_PAUSE_US=20000 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate \
  --model /tmp/m7b --device cuda --prompt "Write a long story about a lighthouse keeper." \
  --max-new-tokens 512 --temperature 1.0 --seed 1 > $W/gen.out 2> $W/gen.err
echo "generate rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
tail -2 $W/gen.err | cut -c1-200
head -60 $W/trace.txt | cut -c1-160
echo "total $(( $(date +%s) - T_START )) s"
