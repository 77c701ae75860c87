set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-585}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Branch lm-head-dh-stream (lh: the LM head's dh GEMMs on a third stream) and the integration
# ss-lh (sl) built beside main, with qf and ss again (call1's whole-step figures were within the
# runs' spread): lh's tests (test_op_bench_cuda bit for bit with and without the third stream,
# test_engine_cuda), bench_ops cross_entropy at 8192 x 4096 x 32768 with and without the third
# stream, twice; then the whole step of main / qf / ss / sl alternated twice.
export LORA4J_TESTDATA=$PWD/java/src/test/resources/hf-reference
: > /tmp/lhb.log
bb() { mkdir -p /tmp/$1 && tar -C /tmp/$1 -xzf $2 && cmake -S /tmp/$1/native -B $PWD/native/build-$1 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/$1cfg.log 2>&1 && nice cmake --build $PWD/native/build-$1 -j 4 --target $3 > /tmp/$1build.log 2>&1; echo "$1 build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/lhb.log; }
(bb lh .gpu/branch-lm-head-dh-stream.tgz "bench_ops lora4j_cuda lora4j_cuda_bench test_op_bench_cuda test_engine_cuda") &
P1=$!
(bb sl .gpu/branch-ss-lh.tgz "bench_cuda lora4j_cuda") &
P2=$!
(bb qf .gpu/branch-qkv-dx-fold.tgz "bench_cuda lora4j_cuda") &
P3=$!
(bb ss .gpu/branch-lora-side-stream.tgz "bench_cuda lora4j_cuda") &
P4=$!
B=native/build-gpu
if [ ! -x $B/bench_cuda ]; then
  STEPS=build CUDA_ARCHS=90 timeout 300 bash scripts/gpu/run.sh > /tmp/mainbuild.log 2>&1
  echo "main build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/lhb.log
fi
wait $P1 $P2 $P3 $P4
L=native/build-lh
: > /tmp/ab.log
cat /tmp/lhb.log >> /tmp/ab.log
(cd $L && LORA4J_REQUIRE_GPU=1 LORA4J_CUDA_BENCH_LIBRARY=$PWD/liblora4j_cuda_bench.so timeout 120 ./test_op_bench_cuda > /tmp/lh-opb.log 2>&1; echo "lh test_op_bench_cuda rc=$?" >> /tmp/ab.log) &
(cd $L && LORA4J_REQUIRE_GPU=1 timeout 150 ./test_engine_cuda > /tmp/lh-engine.log 2>&1; echo "lh test_engine_cuda rc=$?" >> /tmp/ab.log) &
wait
echo "lh tests done at $(( $(date +%s) - T_START )) s" >> /tmp/ab.log
grep -a "FAIL" /tmp/lh-opb.log /tmp/lh-engine.log | cut -c1-200 | head -10 >> /tmp/ab.log
grep -a "serial chunks" /tmp/lh-opb.log | cut -c1-160 | head -12 >> /tmp/ab.log
for rep in 1 2; do for v in dh3 dh1; do
  E=""; [ $v = dh1 ] && E="LORA4J_LM_HEAD_DH_STREAM=0"
  env $E LORA4J_CUDA_BENCH_LIBRARY=$L/liblora4j_cuda_bench.so timeout 60 $L/bench_ops cross_entropy 2>&1 | grep -a "cross_entropy" | sed "s/^/$v /" >> /tmp/ab.log
done; done
for rep in 1 2; do for v in main qf ss sl; do
  [ $(left) -lt 40 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v != main ] && BB=native/build-$v
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done; done
cp /tmp/ab.log /tmp/lh-opb.log /tmp/lh-engine.log $OUT/ 2>/dev/null
cut -c1-230 /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
