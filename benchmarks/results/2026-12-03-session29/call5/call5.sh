set -u
W=/tmp/w5; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1; echo "build rc=$?"
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops attention rc=$?"; tail -1 $W/ops.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 120 ./test_op_bench_cuda > $W/opb.log 2>&1; echo "op_bench rc=$?"; tail -1 $W/opb.log)
LORA4J_OPS_SECONDS=0.2 LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd attention_bwd 2>&1 | grep -a "flash " | cut -c1-60,97-
tar -C $W -czf $OUT/logs.tgz .
