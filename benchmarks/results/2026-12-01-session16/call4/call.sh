set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-320}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Branch attn-fwd-1q (the persistent forward with one Q slot; LORA4J_ATTN_FWD_QSLOTS=2 the two-slot
# form) beside main e6ccd3c: test_ops_cuda's attention cases (every Hopper forward case at both
# slot counts, grids 1, 3 and per item, with and without the counter, bit for bit), engine and
# golden tests, memcheck on the attention cases; bench_ops attention_fwd one slot / two slots /
# main twice; the whole step one slot / main.
export LORA4J_TESTDATA=$PWD/java/src/test/resources/hf-reference
mkdir -p /tmp/m && tar -C /tmp/m -xzf .gpu/base-e6ccd3c.tgz
(cmake -S /tmp/m/native -B $PWD/native/build-m -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/mcfg.log 2>&1 && nice cmake --build $PWD/native/build-m -j 4 --target bench_ops bench_cuda lora4j_cuda lora4j_cuda_bench > /tmp/mbuild.log 2>&1; echo "main build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/mb.log) &
BP=$!
STEPS=build CUDA_ARCHS=90 timeout 150 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/t.log
B=native/build-gpu; M=native/build-m
(cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 150 ctest -V -R "test_ops_cuda|test_engine_cuda|test_golden" > /tmp/ops.log 2>&1; echo "ctest ops (attention) engine golden rc=$?" >> /tmp/t.log)
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
(cd $B && LORA4J_OPS_ONLY=attention timeout 90 $SAN --tool memcheck --error-exitcode 1 ./test_ops_cuda > /tmp/memcheck.log 2>&1; echo "memcheck attention rc=$?" >> /tmp/t.log)
echo "tests done at $(( $(date +%s) - T_START )) s" >> /tmp/t.log
wait $BP
cat /tmp/mb.log > /tmp/ab.log
for rep in 1 2; do for v in q1 q2 main; do
  [ $(left) -lt 50 ] && continue
  L=$B; E="LORA4J_ATTN_FWD_QSLOTS=1"; [ $v = q2 ] && E="LORA4J_ATTN_FWD_QSLOTS=2"; [ $v = main ] && L=$M
  env $E LORA4J_CUDA_BENCH_LIBRARY=$L/liblora4j_cuda_bench.so timeout 40 $L/bench_ops attention_fwd 2>&1 | grep -a "flash " | sed "s/^/$v /" >> /tmp/ab.log
done; done
echo "op bench done at $(( $(date +%s) - T_START )) s" >> /tmp/ab.log
for v in q1 main; do
  [ $(left) -lt 40 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v = main ] && BB=$M
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
cp /tmp/t.log /tmp/ab.log /tmp/ops.log /tmp/memcheck.log $OUT/ 2>/dev/null
cat /tmp/t.log
grep -a "FAIL\|Passed\|Failed" /tmp/ops.log | cut -c1-200 | head
grep -ac "Q slots .*PASS" /tmp/ops.log
grep -a "hd128 lora grads" /tmp/ops.log | cut -c1-140 | head -4
tail -3 /tmp/memcheck.log
cut -c1-200 /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
