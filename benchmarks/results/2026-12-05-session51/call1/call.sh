set -u
# Prepared in the fiftieth session for the next GPU call (best on an H200, where the README's
# table was measured): one call that (1) builds and runs `lora4j train` at 4 x 2048 without and
# with attention recompute offloaded beside bench_cuda and the reference stack (the README
# table's first two rows on this main: the fiftieth session measured them on an H100 only), (2)
# holds our attention kernels and cuDNN's alike (attention_sustained.py; the 1 x 8192 backward was
# 1-2% behind on both cards), (3) runs every ctest binary with LORA4J_REQUIRE_GPU=1 with the time
# left. Needs .device (scripts/gpu/pack-java.sh; scripts/gpu/aside.sh out first). Run from the
# repository root: LIMIT=590 bash benchmarks/results/2026-12-05-session50/next/s51c1.sh
T0=$(date +%s)
LIMIT=${LIMIT:-590}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
REAL_OUT=$OUT
W=/tmp/w51; mkdir -p $W
export OUT=/tmp/o51; mkdir -p $OUT
B=native/build-gpu   # scripts/gpu/run.sh's build folder
STEPS="build cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048,4x2048-attention-offload \
  timeout $(( $(left) > 330 ? 300 : $(left) - 30 )) bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "build cli compare rc=$? at $(( $(date +%s) - T0 )) s"
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
cp $OUT/*.jsonl $OUT/*.json $OUT/*.txt $W/cli/ 2>/dev/null
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' $W/cli-run.log | cut -c1-200 | head -20
tar -C $W -czf $REAL_OUT/logs.tgz .
if [ "$(left)" -gt 120 ]; then
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 110 python3 \
    benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 \
    > $W/attention_sustained.jsonl 2> $W/attention_sustained.err || tail -3 $W/attention_sustained.err
  python3 benchmarks/compare.py --attention-sustained $W/attention_sustained.jsonl | tee $W/attention-sustained-vs-cudnn.txt
  tar -C $W -czf $REAL_OUT/logs.tgz .
fi
if [ "$(left)" -gt 60 ]; then
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 20 )) ctest --timeout 300 > $W/ctest.log 2>&1)
  grep -E "tests passed|Skipped|Failed|\*\*\*" $W/ctest.log | head -12
fi
tar -C $W -czf $REAL_OUT/logs.tgz .
echo "done at $(( $(date +%s) - T0 )) s"
