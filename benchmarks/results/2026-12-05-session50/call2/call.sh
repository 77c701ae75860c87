set -u
# Prepared in the forty-ninth session, not run (it replaces the forty-eighth session's two prepared
# scripts for these runs, cli-table.sh and s49-listeners.sh; after s50c1.sh has shown the patch's
# tests pass, apply it first and pack .device from that tree): the README table's first two rows (the q / k GEMM with
# RoPE fused, the polled listener queue), `lora4j train` at 4 x 2048 without recompute and with attention
# recompute offloaded, beside bench_cuda and the reference stack (STEPS="build cli compare");
# then, with the time left, lora4j train 1 x 512 with -Dlora4j.listenerThread=false and true in
# alternating pairs (the polled queue's first GPU run; predicted: the listeners' share 1.2-1.3 ->
# <0.1 ms a step, no 0.4 ms handover in forward + backward).
T_START=$(date +%s)
LIMIT=${LIMIT:-590}
left() { echo $(( LIMIT - ($(date +%s) - T_START) )); }
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
export OUT=/tmp/o2a; mkdir -p $OUT
STEPS="build cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048,4x2048-attention-offload timeout $(( LIMIT > 510 ? 450 : LIMIT - 60 )) bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "build cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
cp $OUT/*.jsonl $OUT/*.json $OUT/*.txt $W/cli/ 2>/dev/null
cat $W/sum.log
tail -30 $W/cli-run.log | cut -c1-200
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || tar -C /tmp -xJf .device/jre.tar.xz 2>/dev/null
if [ -d /tmp/lora4j-cli/m7b ]; then
  for r in 1 2 3; do
    for lt in false true; do
      [ "$(left)" -lt 45 ] && break 2
      w=/tmp/clib-$lt-$r; mkdir -p $w
      CLI_JAVA_OPTS=-Dlora4j.listenerThread=$lt CLI_RUN_TIMEOUT_S=$(( $(left) - 10 )) timeout $(( $(left) - 5 )) python3 benchmarks/cli_bench.py \
        $J .device/lora4j-cli.jar /tmp/lora4j-cli/m7b $w 1x512 > $W/cli-1x512-$lt-$r.jsonl 2>&1
      echo "1x512 round $r listenerThread=$lt rc=$?"
      for f in $w/cli-*.log; do [ -f "$f" ] && cp "$f" "$W/$(basename "${f%.log}")-$lt-$r.log"; done
      grep -h "time per optimizer step" $w/cli-*.log | sed 's/.*(mean/(mean/' | cut -c1-260
    done
  done
fi
tar -C $W -czf $REAL_OUT/logs.tgz .
echo "total $(( $(date +%s) - T_START )) s"
