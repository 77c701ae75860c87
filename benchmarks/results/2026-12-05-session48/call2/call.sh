set -u
# Forty-eighth session, call 2 (call1 = next/s47c1.sh of the forty-sixth session, whose listener
# rows failed: cli_bench.py's work folder did not exist). This tree: s47-sample-default.patch
# applied (the device draw the default), s47-sample-batch.patch not (call1: not faster).
# 1) build lora4j_cuda, test_sample_cuda, test_decode_cuda (sm_90); both tests, LORA4J_REQUIRE_GPU=1
# 2) lora4j train 1 x 512 (cli_bench.py, 8 steps, --log-steps 1) with -Dlora4j.listenerThread=false
#    and true, three alternating pairs (predicted: listeners ~1.0 -> <0.1 ms a step, +2-2.5% tokens/s)
# 3) lora4j generate sampled, device draw (the default now) vs the host's, this build's library
T0=$(date +%s)
O=/tmp/o; mkdir -p $O
B=native/build-s48
cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native \
  > /tmp/cfg.log 2>&1 && cmake --build $B --target lora4j_cuda test_sample_cuda test_decode_cuda > $O/build.log 2>&1 ||
  { grep -a error $O/build.log | head; tail -5 /tmp/cfg.log; }
echo "build at $(( $(date +%s) - T0 )) s"
for t in test_sample_cuda test_decode_cuda; do
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 200 ./$t > $O/$t.log 2>&1; echo "$t rc=$?")
  grep -a -c "PASS" $O/$t.log; grep -a "FAIL\|SKIP" $O/$t.log | head -3
done
tar -C /tmp -xJf .device/jre.tar.xz 2>/dev/null; J=/tmp/lora4j-jre/bin/java
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b \
  --tokenizer examples/models/tiny-mistral > $O/init.log 2>&1 || tail -5 $O/init.log
echo "init-model at $(( $(date +%s) - T0 )) s"
for r in 1 2 3; do
  for lt in false true; do
    mkdir -p /tmp/clib-$lt-$r
    CLI_JAVA_OPTS=-Dlora4j.listenerThread=$lt CLI_RUN_TIMEOUT_S=100 timeout 120 python3 benchmarks/cli_bench.py \
      $J .device/lora4j-cli.jar /tmp/lora4j-cli/m7b /tmp/clib-$lt-$r 1x512 > $O/cli-1x512-listeners-$lt-$r.jsonl 2>&1
    echo "round $r listenerThread=$lt rc=$? $(grep -o '"tokens_per_s[a-z_]*": [0-9.]*' $O/cli-1x512-listeners-$lt-$r.jsonl | head -1)"
    grep -h -o "listeners [0-9.]*" /tmp/clib-$lt-$r/cli-*.log 2>/dev/null | tail -1
    for f in /tmp/clib-$lt-$r/cli-*.log; do [ -f "$f" ] && cp "$f" "$O/$(basename "${f%.log}")-$lt-$r.log"; done
  done
done
echo "listeners at $(( $(date +%s) - T0 )) s"
LORA4J_CUDA_LIBRARY=$B/liblora4j_cuda.so GEN_FORMS="sample=TEMPERATURE=0.7 sample-host=TEMPERATURE=0.7,LORA4J_DECODE_SAMPLE_DEVICE=0" \
  GEN_ROUNDS=3 GEN_LONG=0 JAVA=$J bash scripts/gpu/gen.sh /tmp/gen > $O/gen.txt 2>&1; tail -4 $O/gen.txt
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > $O/gpu.txt 2>&1; cat $O/gpu.txt
(cd /tmp && tar czf $OUT/logs.tgz o gen 2>/dev/null)
echo "done at $(( $(date +%s) - T0 )) s"
