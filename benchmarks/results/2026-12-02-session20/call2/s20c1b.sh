set -u
T_START=$(date +%s)
export OUT
# Session 20, second call: sm90-bounded (sm90-window with each Hopper attention kernel built with
# and without the bounds; full rows take the one without). Its tests; the attention kernels main
# against sb, alternated three times (call1 showed sw 1-2% slower on full rows); v0.1's window
# at 1 x 8192 (the bounded kernels), main against sb.
for n in main sb; do
  f=.gpu/base-main.tgz; [ $n = sb ] && f=.gpu/branch-sm90-bounded.tgz
  mkdir -p /tmp/$n && tar -C /tmp/$n -xzf $f && ln -sfn $PWD/java /tmp/$n/java
  cmake -S /tmp/$n/native -B /tmp/build-$n -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/$n-cfg.log 2>&1 && cmake --build /tmp/build-$n -j 16 > /tmp/$n-build.log 2>&1
  echo "$n build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
done
(cd /tmp/build-sb && LORA4J_REQUIRE_GPU=1 timeout 120 ctest -V -R "test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_offload_cuda" > /tmp/sb-tests.log 2>&1; echo "sb tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
: > /tmp/ops-ab.log
for i in 1 2 3; do
  for n in main sb; do
    LORA4J_OPS_SECONDS=0.5 LORA4J_CUDA_BENCH_LIBRARY=/tmp/build-$n/liblora4j_cuda_bench.so timeout 60 /tmp/build-$n/bench_ops attention_fwd attention_bwd 2>&1 | grep "attention_" | sed "s/^/$n /" >> /tmp/ops-ab.log
  done
done
echo "ops a/b at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
for n in main sb; do
  LORA4J_BENCH_WINDOW=4096 LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=1x8192 timeout 60 /tmp/build-$n/bench_cuda 2>&1 | grep '"train_step"' | sed "s/^/$n /" >> /tmp/window.log
done
echo "window a/b at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
cp /tmp/sum.log /tmp/sb-tests.log /tmp/ops-ab.log /tmp/window.log $OUT/ 2>/dev/null
cat /tmp/sum.log
echo "sb:"; grep -a "Passed\|Failed" /tmp/sb-tests.log | cut -c1-120 | head -8
grep -a "FAIL" /tmp/sb-tests.log | cut -c1-200 | head -12
grep -a "segment runs\]" /tmp/sb-tests.log | cut -c1-170 | head -4
echo "attention kernels, TFLOP/s (main / sb, three rounds):"
for op in "attention_fwd/flash B=4 S=2048" "attention_bwd/flash B=4 S=2048" "attention_fwd/flash B=1 S=8192" "attention_bwd/flash B=1 S=8192"; do
  echo "  $op: main $(grep -a "^main $op" /tmp/ops-ab.log | awk '{print $(NF-2)}' | tr '\n' ' ') sb $(grep -a "^sb $op" /tmp/ops-ab.log | awk '{print $(NF-2)}' | tr '\n' ' ')"
done
echo "v0.1 window 4096, 1 x 8192 recompute (sb against main):"; python3 benchmarks/ab.py /tmp/window.log 2>/dev/null | cut -c1-320
echo "total $(( $(date +%s) - T_START )) s"
