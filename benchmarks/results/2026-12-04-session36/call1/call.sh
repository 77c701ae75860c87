set -u
# Thirty-sixth session, first call: q's bf16 copy for the Hopper attention backward made once by a
# pre-pass and loaded with each Q tile (s36-qb: the thirty-fifth session's next/qb.patch on main
# c69a6bc). No carry. One build; the A/B is
# LORA4J_ATTN_QB=0 (the copy off: converted in shared memory as before; labelled main in the held
# table, "off" elsewhere) against the default.
# Steps: the whole of test_ops_cuda and test_engine_cuda with LORA4J_REQUIRE_GPU=1 (the new
# checks: the copy = bf16(q), dk / dv the same bits as converted in place, dq within tolerance);
# memcheck and initcheck on the attention cases; Nsight Compute bytes and instructions
# of both; a burst; held A/B in three rounds; the contract's table against cuDNN with the copy;
# the engine's step at 4 x 2048 with and without (bench_cuda, LORA4J_BENCH_SETTINGS=4x2048);
# and the forward's DRAM bytes (ncu_bytes.py, split at 0.6 ms).
# Prediction (NOTES, thirty-fifth session): ~17 M fewer instructions a call at 4 x 2048 (7%),
# ~200 MB more DRAM (~7 mJ, +1.1%); worth it if the copies' on-chip work cost more than that.
T_START=$(date +%s)
W=/tmp/w1; mkdir -p $W
B=native/build-gpu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 150 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 120 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest.log 2>&1
echo "ctest rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck initcheck; do  # racecheck does not follow the mbarrier handoffs (run.sh)
  LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool $tool --error-exitcode 1 $B/test_ops_cuda > $W/san-$tool.log 2>&1
  echo "$tool rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for v in off qb; do
  if [ $v = off ]; then export LORA4J_ATTN_QB=0; else unset LORA4J_ATTN_QB; fi
  LORA4J_OPS_SECONDS=0.02 timeout 45 $NCU --clock-control none --kernel-name regex:attn_bwd_sm90 --launch-count 120 --csv --page raw \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,smsp__inst_executed.sum \
    $B/bench_ops attention_bwd > $W/ncu-$v.csv 2> $W/ncu-$v.err
  python3 benchmarks/ncu_bytes.py $v $W/ncu-$v.csv >> $W/ncu.md 2>> $W/ncu-sum.err
  timeout 40 $B/bench_ops attention_bwd > $W/ops-$v.txt 2>&1
  echo "== $v" >> $W/bench.txt; grep -a "flash " $W/ops-$v.txt >> $W/bench.txt
done
unset LORA4J_ATTN_QB
# the forward's DRAM bytes (the persistent form's, never measured; NOTES, thirty-fifth session)
LORA4J_OPS_SECONDS=0.02 timeout 45 $NCU --clock-control none --kernel-name regex:attn_fwd_sm90 --launch-count 120 --csv --page raw \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,smsp__inst_executed.sum \
  $B/bench_ops attention_fwd > $W/ncu-fwd.csv 2> $W/ncu-fwd.err
python3 benchmarks/ncu_bytes.py forward $W/ncu-fwd.csv --split-ms 0.6 >> $W/ncu.md 2>> $W/ncu-sum.err
echo "ncu and burst at $(( $(date +%s) - T_START )) s" >> $W/sum.log
held() {
  if [ $1 = main ]; then export LORA4J_ATTN_QB=0; else unset LORA4J_ATTN_QB; fi
  timeout 30 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  unset LORA4J_ATTN_QB
}
held main 1; held qb 1; held qb 2; held main 2; held main 3; held qb 3
echo "held at $(( $(date +%s) - T_START )) s" >> $W/sum.log
timeout 120 python3 benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 \
  > $W/attention_sustained-qb.jsonl 2> $W/attention_sustained-qb.err
echo "attention_sustained rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for v in off qb; do
  if [ $v = off ]; then export LORA4J_ATTN_QB=0; else unset LORA4J_ATTN_QB; fi
  LORA4J_BENCH_SETTINGS=4x2048 timeout 100 $B/bench_cuda > $W/step-$v.jsonl 2>&1
  echo "step $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
unset LORA4J_ATTN_QB
gzip $W/ncu-*.csv
tar -C $W -czf $OUT/logs.tgz --exclude=b .
cat $W/sum.log
grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest.log | head -3
grep -a "q's bf16 copy\|bwd-wgmma-qb\|FAIL" $W/ctest.log | grep -a "FAIL\|copy taken" | head -6
grep -a "\[golden\] hd128 lora grads" $W/ctest.log | head -4 | cut -c1-110
grep -a "ERROR SUMMARY" $W/san-*.log
echo "| variant | shape | launches | ms | DRAM read MB | DRAM write MB | L2 GB | M instr |"; cat $W/ncu.md
cut -c1-120 $W/bench.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
python3 benchmarks/compare.py --attention-sustained $W/attention_sustained-qb.jsonl
grep -a '"train_step"' $W/step-*.jsonl | cut -c1-220
