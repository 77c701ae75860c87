set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-585}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Prepared in the nineteenth session for the next one: branches sm90-segments (packed rows on
# the Hopper attention kernels; its first form passed test_ops_cuda / test_engine_cuda and ran
# 24.3% faster on packed rows, paired; this form, 7f1deb5 and later, reads the forward's segment
# starts from memory: no spill, not yet run) and sm90-window on top of it (sliding windows that
# cut pairs on the Hopper kernels too: Mistral v0.1 on rows past 4096; not yet run). Carry this
# script and .gpu/base-main.tgz, .gpu/branch-sm90-segments.tgz, .gpu/branch-sm90-window.tgz
# (rebuild them first if main or a branch moved:
#   git archive --format=tar.gz -o .gpu/base-main.tgz main cmake native
#   git archive --format=tar.gz -o .gpu/branch-sm90-segments.tgz sm90-segments cmake native
#   git archive --format=tar.gz -o .gpu/branch-sm90-window.tgz sm90-window cmake native).
# 1. both branches' GPU tests (ops, engine with golden, NF4, offload); 2. the attention kernels'
# own speed on full rows, main against sm90-window (bench_ops, alternated three times: the
# change must not slow the kernels every full row runs); 3. paired A/B on packed rows (examples
# of ~500 tokens) without recompute and with attention recompute offloaded, 16 pairs
# (sm90-window's build); 4. full rows, main against sm90-window in bench_cuda, alternated
# (labelled runs for ab.py); 5. Mistral v0.1's window at 1 x 8192 with recompute, main against
# sm90-window, alternated; 6. the real-width window and packed cases with the time left.
# Merge sm90-window if all of it passes and 2 and 4 show no loss; sm90-segments alone if only
# the window cases fail.
for n in main sg sw; do
  f=.gpu/base-main.tgz; [ $n = sg ] && f=.gpu/branch-sm90-segments.tgz
  [ $n = sw ] && f=.gpu/branch-sm90-window.tgz
  mkdir -p /tmp/$n && tar -C /tmp/$n -xzf $f && ln -sfn $PWD/java /tmp/$n/java
  cmake -S /tmp/$n/native -B /tmp/build-$n -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/$n-cfg.log 2>&1 && cmake --build /tmp/build-$n -j 16 > /tmp/$n-build.log 2>&1
  echo "$n build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
done
for n in sw sg; do
  (cd /tmp/build-$n && LORA4J_REQUIRE_GPU=1 timeout 120 ctest -V -R "test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_offload_cuda" > /tmp/$n-tests.log 2>&1; echo "$n tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
done
: > /tmp/ops-ab.log
for i in 1 2 3; do
  for n in main sw; do
    LORA4J_OPS_SECONDS=0.5 LORA4J_CUDA_BENCH_LIBRARY=/tmp/build-$n/liblora4j_cuda_bench.so timeout 60 /tmp/build-$n/bench_ops attention_fwd attention_bwd 2>&1 | grep "attention_" | sed "s/^/$n /" >> /tmp/ops-ab.log
  done
done
echo "ops a/b at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
pairrun() {  # setting, then VAR=VALUE pairs for the bench
  local set=$1 ab=$2; shift 2
  [ $(left) -lt 80 ] && { echo "sw $ab $set $*: skipped, $(left) s left" >> /tmp/pairs.log; return; }
  env "$@" LORA4J_BENCH_PAIRS=16 LORA4J_BENCH_AB="$ab" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=$set timeout $(( $(left) - 10 )) /tmp/build-sw/bench_cuda 2>&1 | sed "s/^/sw /" >> /tmp/pairs.log
}
pairrun 4x2048-none LORA4J_SEGMENT_RUNS=0 LORA4J_BENCH_PACKED=500
pairrun 4x2048-attention LORA4J_SEGMENT_RUNS=0 LORA4J_BENCH_PACKED=500
for i in 1 2 3; do
  for n in main sw; do
    [ $(left) -lt 200 ] && break 2
    LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 60 /tmp/build-$n/bench_cuda 2>&1 | grep '"train_step"' | sed "s/^/$n /" >> /tmp/full.log
  done
done
echo "full rows a/b at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
for i in 1 2; do
  for n in main sw; do
    [ $(left) -lt 120 ] && break 2
    LORA4J_BENCH_WINDOW=4096 LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=1x8192 timeout 60 /tmp/build-$n/bench_cuda 2>&1 | grep '"train_step"' | sed "s/^/$n /" >> /tmp/window.log
  done
done
echo "window a/b at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
for c in window packed; do
  [ $(left) -lt 40 ] && break
  (cd /tmp/build-sw && LORA4J_REALWIDTH_CASES=$c LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 10 )) ./test_realwidth_cuda >> /tmp/sw-realwidth.log 2>&1; echo "sw realwidth $c rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
done
cp /tmp/sum.log /tmp/sg-tests.log /tmp/sw-tests.log /tmp/ops-ab.log /tmp/pairs.log /tmp/full.log /tmp/window.log /tmp/sw-realwidth.log /tmp/*-build.log $OUT/ 2>/dev/null
cat /tmp/sum.log
for n in sw sg; do
  echo "$n:"; grep -a "Passed\|Failed" /tmp/$n-tests.log | cut -c1-120 | head -8
  grep -a "FAIL" /tmp/$n-tests.log | cut -c1-200 | head -12
done
grep -a "segment runs\]" /tmp/sw-tests.log | cut -c1-170
grep -a "FAIL\|test_realwidth_cuda:" /tmp/sw-realwidth.log 2>/dev/null | head -6
echo "attention kernels, TFLOP/s (main / sw, three rounds):"
for op in "attention_fwd/flash B=4 S=2048" "attention_bwd/flash B=4 S=2048" "attention_fwd/flash B=1 S=8192" "attention_bwd/flash B=1 S=8192"; do
  echo "  $op: main $(grep -a "^main $op" /tmp/ops-ab.log | awk '{print $(NF-2)}' | tr '\n' ' ') sw $(grep -a "^sw $op" /tmp/ops-ab.log | awk '{print $(NF-2)}' | tr '\n' ' ')"
done
python3 benchmarks/ab.py /tmp/pairs.log 2>/dev/null | cut -c1-320
echo "full rows, 4 x 2048 (sw against main):"; python3 benchmarks/ab.py /tmp/full.log 2>/dev/null | cut -c1-320
echo "v0.1 window 4096, 1 x 8192 recompute (sw against main):"; python3 benchmarks/ab.py /tmp/window.log 2>/dev/null | cut -c1-320
echo "total $(( $(date +%s) - T_START )) s"
