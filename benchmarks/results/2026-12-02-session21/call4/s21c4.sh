set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-400}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-first session, call4: main (dce8e96), the user's path with padded rows beside full rows
# in one call: lora4j train at 4 x 2048 on full rows and on cli_bench.py's padded rows (1,024 to
# 2,048 tokens), the engine benchmark before and after, the reference at 4 x 2048. The twentieth
# session's padded figure (13,488 real tokens/s) was 5.6% under the nineteenth's (14,283); call1
# of this session ran the engine's padded step at 454.8 ms (nineteenth: 456.0).
STEPS="build cli compare" CUDA_ARCHS=90 CLI_SETTINGS="4x2048,4x2048-padded" BENCH_SETTINGS=4x2048 HF_SETTINGS="4x2048" timeout $(( $(left) - 15 )) bash scripts/gpu/run.sh > /tmp/cli-run.log 2>&1
echo "cli run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/cli-run.log
mkdir -p /tmp/cli && tar -C /tmp/cli -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz; cp /tmp/cli-run.log $OUT/
(cd /tmp/cli && tar -czf $OUT/cli-logs.tgz .)
grep -a "FAIL\|rc=\|failed" /tmp/cli-run.log | head
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' /tmp/cli-run.log | head -30
grep -a '"cli_train"' /tmp/cli-run.log | cut -c1-700
echo "total $(( $(date +%s) - T_START )) s"
