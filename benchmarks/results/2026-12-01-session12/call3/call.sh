set -u
T_START=$(date +%s)
export OUT
# dQ through shared memory + bulk reduce-add (hd128 backward): tests, then bench_ops A/B against the base kernel
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden" timeout 200 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
cp /tmp/run.log /tmp/tests-fast.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok\|BUILD" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/tests-fast.log | tail -4
grep -a "bwd-wgmma" /tmp/tests-fast.log | grep -a "128" | cut -c1-150 | head -12
# base kernel build beside it
rm -rf /tmp/nbr && mkdir -p /tmp/nbr && cp -r cmake /tmp/nbr/ && cp -r native /tmp/nbr/native && rm -rf /tmp/nbr/native/build-gpu && cp .gpu/attention_sm90_base.cu /tmp/nbr/native/src/cuda/kernels/attention_sm90.cu
cmake -S /tmp/nbr/native -B /tmp/nb/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/nbcfg.log 2>&1
cmake --build /tmp/nb/build -j 16 --target bench_ops lora4j_cuda_bench > /tmp/nbbuild.log 2>&1 || { echo "base build failed"; tail -5 /tmp/nbbuild.log; }
B=native/build-gpu
: > /tmp/ab.log
for rep in 1 2; do
  echo "== new" >> /tmp/ab.log
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_bwd >> /tmp/ab.log 2>&1
  echo "== base" >> /tmp/ab.log
  LORA4J_CUDA_BENCH_LIBRARY=/tmp/nb/build/liblora4j_cuda_bench.so timeout 60 /tmp/nb/build/bench_ops attention_bwd >> /tmp/ab.log 2>&1
done
cp /tmp/ab.log $OUT/
grep -a "==\|flash " /tmp/ab.log | grep -v mma
echo "total $(( $(date +%s) - T_START )) s"
