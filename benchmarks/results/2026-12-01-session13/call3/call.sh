set -u
T_START=$(date +%s)
export OUT
left() { echo $(( 585 - $(date +%s) + T_START )); }
# faddaf8 (leaner softmax): real-width cases, the user's path beside the reference, then forward ping-pong rebuilt on the lean softmax A/B in bench_ops
STEPS="build" CUDA_ARCHS=90 timeout 120 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
B=native/build-gpu
rm -rf /tmp/pp && mkdir -p /tmp/pp && cp -r cmake /tmp/pp/ && cp -r native /tmp/pp/native && rm -rf /tmp/pp/native/build-gpu && cp .gpu/attention_sm90_pp.cu /tmp/pp/native/src/cuda/kernels/attention_sm90.cu
(cmake -S /tmp/pp/native -B /tmp/pp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/ppcfg.log 2>&1 && nice cmake --build /tmp/pp/build -j 4 --target bench_ops lora4j_cuda_bench > /tmp/ppbuild.log 2>&1; echo "pp build rc=$?" >> /tmp/ppbuild.log) &
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 200 ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log /tmp/build.log $OUT/
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS="4x2048,4x2048-attention-offload" BENCH_SETTINGS=4x2048 HF_SETTINGS="4x2048,4x2048gc" timeout $(( $(left) - 70 )) bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/cli && tar -C /tmp/cli -xzf $OUT/logs.tgz 2>/dev/null; cp /tmp/run.log $OUT/
(cd /tmp/cli && tar -czf $OUT/cli-logs.tgz .)
wait
: > /tmp/ab.log
for rep in 1 2; do
  for v in lean pingpong; do
    [ $(left) -lt 20 ] && continue
    BB=$B; [ $v = pingpong ] && BB=/tmp/pp/build
    echo "== $v" >> /tmp/ab.log
    LORA4J_CUDA_BENCH_LIBRARY=$BB/liblora4j_cuda_bench.so timeout 30 $BB/bench_ops attention_fwd 2>&1 | grep "flash " >> /tmp/ab.log
  done
done
cp /tmp/ab.log /tmp/ppbuild.log $OUT/
grep -a "BUILD\|build ok" /tmp/build.log | head -3
grep -a "FAIL\|rc=\|failure" /tmp/realwidth.log | cut -c1-160 | tail -6; echo "realwidth PASS lines: $(grep -ac PASS /tmp/realwidth.log)"
grep -a "FAIL\|rc=\|failed" /tmp/run.log | head
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' /tmp/run.log | head -30
tail -1 /tmp/ppbuild.log
cut -c1-200 /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
