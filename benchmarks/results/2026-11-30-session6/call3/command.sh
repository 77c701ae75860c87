set -u
ROOT=$PWD
# variant trees: V_main = this tree with the dQ change reversed; V_lm = this tree with the LM-head overlap
mk() {  # name, patch args
  local d=/tmp/$1; shift
  mkdir -p $d && tar -C $ROOT --exclude=./.device --exclude=./.gpu --exclude=./.git --exclude=./native/build-gpu --exclude=./java/target -cf - . | tar -C $d -xf - \
   && (cd $d && patch -p1 -s "$@") \
   && cmake -S $d/native -B $d/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/cfg-$(basename $d).log 2>&1 \
   && cmake --build $d/b -j16 > /tmp/build-$(basename $d).log 2>&1 || { echo "VARIANT $d FAILED"; tail -20 /tmp/cfg-$(basename $d).log /tmp/build-$(basename $d).log; }
}
mk main -R -i $ROOT/.gpu/dqv4.patch &
mk lm -i $ROOT/.gpu/lmhead.patch &
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_realwidth_cuda" LORA4J_REALWIDTH_CASES="7b-v0.3 2L" bash scripts/gpu/run.sh > /tmp/run.log 2>&1
wait
ops() { LORA4J_CUDA_BENCH_LIBRARY=$1/liblora4j_cuda_bench.so $1/bench_ops $2 | grep -E "flash|fused|materialized"; }
for i in 1 2; do
  echo "# dq-v4"; ops $ROOT/native/build-gpu attention_bwd
  echo "# main"; ops /tmp/main/b attention_bwd
done > $OUT/ab-attention.txt 2>&1
for i in 1 2; do ops /tmp/lm/b cross_entropy; done > $OUT/ab-lmhead.txt 2>&1
(cd /tmp/lm/b && LORA4J_REQUIRE_GPU=1 ctest -V -R "test_op_bench_cuda|test_engine_cuda") > $OUT/lm-ctest.txt 2>&1
tail -14 /tmp/run.log; cp /tmp/run.log $OUT/
cat $OUT/ab-attention.txt $OUT/ab-lmhead.txt | cut -c1-60,90-130; grep -E "tests passed|Failed  " $OUT/lm-ctest.txt
