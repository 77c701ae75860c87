set -u
T_START=$(date +%s)
export OUT
left() { echo $(( 585 - $(date +%s) + T_START )); }
# leaner softmax (forward: scale folded into one FMA per score, one guard per row; both: ex2 flushing to zero): tests, ops vs cuDNN, A/B against 0596f98
mkdir -p /tmp/base && tar -C /tmp/base -xzf .gpu/base-0596f98.tgz
(cmake -S /tmp/base/native -B /tmp/base/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/basecfg.log 2>&1 && nice cmake --build /tmp/base/build -j 6 --target bench_ops bench_cuda lora4j_cuda_bench lora4j_cuda > /tmp/basebuild.log 2>&1) &
BPID=$!
STEPS="build test ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden" timeout 300 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
tar -xzOf $OUT/logs.tgz ./attention-vs-cudnn.txt > /tmp/attention-vs-cudnn.txt 2>/dev/null
cp /tmp/run.log /tmp/tests-fast.log /tmp/attention-vs-cudnn.txt $OUT/ 2>/dev/null
B=native/build-gpu
# SASS of the forward (instruction mix of the new softmax)
OBJ=$(ls $B/CMakeFiles/*/src/cuda/kernels/attention_sm90.cu.o 2>/dev/null | head -1)
cuobjdump -sass "$OBJ" > /tmp/sass.txt 2>&1; gzip -c /tmp/sass.txt > $OUT/sass.txt.gz
awk '/Function : .*attn_fwd_sm90_kernelILi128/{f=1;next} /Function :/{f=0} f' /tmp/sass.txt | grep -oE "^\s+/\*[0-9a-f]{4}\*/\s+[A-Z0-9_.@!P ]+" | awk '{print $2}' | sed 's/^@!\?P[0-9T]*//' | sort | uniq -c | sort -rn | head -14 > /tmp/sassmix.txt
wait $BPID; echo "base build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/ab.log
for rep in 1 2; do
  for v in new base; do
    BB=$B; [ $v = base ] && BB=/tmp/base/build
    echo "== $v" >> /tmp/ab.log
    LORA4J_CUDA_BENCH_LIBRARY=$BB/liblora4j_cuda_bench.so timeout 60 $BB/bench_ops attention_fwd attention_bwd 2>&1 | grep "flash " >> /tmp/ab.log
  done
done
for v in new base new base; do
  [ $(left) -lt 40 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v = base ] && BB=/tmp/base/build
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
cp /tmp/ab.log /tmp/sassmix.txt $OUT/
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/tests-fast.log | tail -5
grep -a "FAIL" /tmp/tests-fast.log | cut -c1-200 | head
grep -a "hd128 lora grads\|hd128 base logits" /tmp/tests-fast.log | cut -c1-150 | head -6
cat /tmp/attention-vs-cudnn.txt
cat /tmp/sassmix.txt
cut -c1-200 /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
