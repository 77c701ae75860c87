STEPS="build test ops" CUDA_ARCHS=90 OPS_ARGS="attention_bwd cross_entropy" CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_op_bench_cuda|test_realwidth_cuda|test_batch_rules" LORA4J_REALWIDTH_CASES=v0.1 bash scripts/gpu/run.sh > $OUT/run.log 2>&1
for w in 0 4096 2047; do echo "window $w"; LORA4J_BENCH_WINDOW=$w LORA4J_BENCH_LAYERS=8 timeout 90 native/build-gpu/bench_cuda; done > $OUT/bench_window.txt 2>&1
tail -40 $OUT/run.log; grep -v "^{\"attention\|^#" $OUT/bench_window.txt | cut -c1-220
