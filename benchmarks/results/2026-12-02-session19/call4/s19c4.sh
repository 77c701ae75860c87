set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-200}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Branch sm90-segments (this tree): packed rows on the Hopper attention kernels. Build, the ops
# and engine tests (the new attention cases against the CPU twin, packed_segment_runs), then one
# paired A/B on packed rows (examples of ~500 tokens) with the time left.
cmake -S native -B /tmp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/cfg.log 2>&1 && cmake --build /tmp/b -j 16 > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" | tee /tmp/sum.log
(cd /tmp/b && LORA4J_REQUIRE_GPU=1 timeout 60 ./test_ops_cuda > /tmp/ops.log 2>&1; echo "ops rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
(cd /tmp/b && LORA4J_REQUIRE_GPU=1 timeout 40 ./test_engine_cuda > /tmp/engine.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
if [ $(left) -gt 50 ]; then
  LORA4J_BENCH_PACKED=500 LORA4J_BENCH_PAIRS=12 LORA4J_BENCH_AB="LORA4J_SEGMENT_RUNS=0" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout $(( $(left) - 8 )) /tmp/b/bench_cuda > /tmp/pairs.log 2>&1
  echo "pairs rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
fi
cp /tmp/sum.log /tmp/ops.log /tmp/engine.log /tmp/pairs.log /tmp/build.log $OUT/ 2>/dev/null
cat /tmp/sum.log
grep -a "error" /tmp/build.log | head -5
grep -a "FAIL" /tmp/ops.log | cut -c1-200 | head -20
grep -a "seg\|segment" /tmp/ops.log | grep -v PASS | cut -c1-200 | head -5
grep -a "seg" /tmp/ops.log | grep -c PASS
grep -a "FAIL" /tmp/engine.log | cut -c1-200 | head -10
grep -a "segment runs" /tmp/engine.log | cut -c1-170
tail -1 /tmp/ops.log; tail -1 /tmp/engine.log
python3 benchmarks/ab.py /tmp/pairs.log 2>/dev/null | cut -c1-300
grep -a "error" /tmp/pairs.log | head -3
echo "total $(( $(date +%s) - T_START )) s"
