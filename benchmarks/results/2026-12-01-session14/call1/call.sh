set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-585}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# main (ping-pong forward) beside cuDNN; A/B in bench_ops: the forward's O rescale skipped per warp (.gpu/attention_sm90_rskip.cu) and the backward's warpgroup 1 with its own dQ buffer on the lean softmax (.gpu/attention_sm90_bwdq.cu); kernel sum against step time at 32 layers (the CUDA graphs question)
rm -rf /tmp/rs && mkdir -p /tmp/rs && cp -r cmake /tmp/rs/ && cp -r native /tmp/rs/native && rm -rf /tmp/rs/native/build-gpu && cp .gpu/attention_sm90_rskip.cu /tmp/rs/native/src/cuda/kernels/attention_sm90.cu
rm -rf /tmp/bq && mkdir -p /tmp/bq && cp -r cmake /tmp/bq/ && cp -r native /tmp/bq/native && rm -rf /tmp/bq/native/build-gpu && cp .gpu/attention_sm90_bwdq.cu /tmp/bq/native/src/cuda/kernels/attention_sm90.cu
(for v in rs bq; do cmake -S /tmp/$v/native -B /tmp/$v/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/${v}cfg.log 2>&1 && nice cmake --build /tmp/$v/build -j 4 --target bench_ops lora4j_cuda_bench test_ops_cuda > /tmp/${v}build.log 2>&1; echo "$v build rc=$?" >> /tmp/rsbuild.log; done) &
STEPS="build test cudasan ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda" timeout 260 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
cp /tmp/run.log /tmp/l1/tests.log /tmp/l1/attention-vs-cudnn.txt /tmp/l1/ops.txt /tmp/l1/torch_ops.log $OUT/ 2>/dev/null
B=native/build-gpu
wait; : > /tmp/ab.log
cat /tmp/rsbuild.log >> /tmp/ab.log
for v in rs bq; do
  (cd /tmp/$v/build && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 60 ./test_ops_cuda > /tmp/$v-test.log 2>&1; echo "$v test_ops_cuda (attention) rc=$?" >> /tmp/ab.log)
done
for rep in 1 2; do
  for v in main rs bq; do
    BB=$B; [ $v != main ] && BB=/tmp/$v/build
    echo "== $v" >> /tmp/ab.log
    LORA4J_CUDA_BENCH_LIBRARY=$BB/liblora4j_cuda_bench.so timeout 40 $BB/bench_ops attention_fwd attention_bwd 2>&1 | grep "flash " >> /tmp/ab.log
  done
done
cp /tmp/ab.log /tmp/rs-test.log /tmp/bq-test.log $OUT/
if [ $(left) -gt 150 ]; then
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 STEPS="profile" CUDA_ARCHS=90 timeout $(( $(left) - 10 )) bash scripts/gpu/run.sh > /tmp/prof-run.log 2>&1
  mkdir -p /tmp/l2 && tar -C /tmp/l2 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
  cp /tmp/prof-run.log /tmp/l2/profile.txt /tmp/l2/profile-run.log $OUT/ 2>/dev/null
fi
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok\|cudasan" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -5
cat /tmp/l1/attention-vs-cudnn.txt 2>/dev/null
cut -c1-200 /tmp/ab.log
grep -a "train_step" $OUT/profile-run.log 2>/dev/null | cut -c1-200; head -25 $OUT/profile.txt 2>/dev/null
echo "total $(( $(date +%s) - T_START )) s"
