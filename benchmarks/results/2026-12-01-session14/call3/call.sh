set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-590}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# q/k GEMMs on an fp16 input (default) against the e4m3 residue path (LORA4J_QK_LO=e4m3), same build:
# tests (ops, gemm, engine, golden, nf4, offload), the seven real-width cases, whole step alternated, per-op times
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_gemm_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_offload_cuda" timeout 200 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
cp /tmp/run.log /tmp/l1/tests.log $OUT/ 2>/dev/null
B=native/build-gpu
: > /tmp/ab.log
for v in f16 e4m3 f16 e4m3; do
  E=""; [ $v = e4m3 ] && E="LORA4J_QK_LO=e4m3"
  env $E LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $B/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
cp /tmp/ab.log $OUT/
(cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 75 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log $OUT/
if [ $(left) -gt 50 ]; then
  LORA4J_PHASE_TIMES=/tmp/phases.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout $(( $(left) - 8 )) $B/bench_cuda > /tmp/bench_phases.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bench_phases.jsonl /tmp/phases.jsonl > /tmp/phases.txt 2>&1
  cp /tmp/phases.txt /tmp/phases.jsonl /tmp/bench_phases.jsonl $OUT/ 2>/dev/null
fi
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -7
grep -a "FAIL" /tmp/l1/tests.log | cut -c1-220 | head -20
grep -a "hd128 lora grads\|hd128 base logits\|fp16 input\|f16 x f16" /tmp/l1/tests.log | cut -c1-170 | head -24
cut -c1-220 /tmp/ab.log
grep -a "FAIL\|rc=\|failure" /tmp/realwidth.log | cut -c1-200 | tail -12; echo "realwidth PASS lines: $(grep -ac PASS /tmp/realwidth.log)"
head -45 /tmp/phases.txt 2>/dev/null | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
