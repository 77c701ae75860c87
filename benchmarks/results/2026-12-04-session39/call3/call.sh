set -u
# Thirty-ninth session, call 3. 1) the Java GPU tests and the demo on the GPU (the trainer now
# breaks "listeners" down by listener and keeps metrics.jsonl open); 2) `lora4j train` on short
# rows once: where the 1.0-1.3 ms "listeners" of calls 1-2 go (step metrics / metrics.jsonl /
# progress); 3) `lora4j train` at 4 x 2048 (no recompute), LORA4J_REFRESH_BATCH 0 and 1
# alternately: the optimizer phase at the reference shape (predicted 2.2-2.6 -> ~0.8 ms, ~0.4%
# of the step; tokens/s are not expected to resolve it).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w3; mkdir -p $W
export OUT=/tmp/o3a; mkdir -p $OUT
STEPS="java" timeout 200 bash scripts/gpu/run.sh > $W/java-run.log 2>&1
echo "java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/java && cp $OUT/java*.log $OUT/demo-cuda.log $W/java/ 2>/dev/null
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b > $W/init.log 2>&1
run() {  # name, env assignment, settings
  d=$W/$1; mkdir -p $d
  env $2 CLI_RUN_TIMEOUT_S=90 timeout 150 python3 benchmarks/cli_bench.py $J .device/lora4j-cli.jar \
    /tmp/lora4j-cli/m7b /tmp/lora4j-cli $3 > $d/cli_bench.jsonl 2>&1
  echo "$1 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  cp /tmp/lora4j-cli/cli-*.log $d/ 2>/dev/null; rm -f /tmp/lora4j-cli/cli-*.log
}
run run1-short LORA4J_REFRESH_BATCH=1 short
i=1
for rb in 0 1 0 1; do i=$((i+1)); run run$i-4x2048-rb$rb LORA4J_REFRESH_BATCH=$rb 4x2048; done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
cat $W/java/java-summary.log
grep -a "eval loss\|steps:" $W/java/demo-cuda.log | head -3
for d in $W/run*; do
  echo "== $(basename $d)"
  grep -h "time per optimizer step" $d/cli-*.log | sed 's/.*steps after the first): //' | cut -c1-240
  python3 -c "
import json
for l in open('$d/cli_bench.jsonl'):
  if l.startswith('{'):
    x=json.loads(l); print(x.get('setting'), x.get('tokens_per_s'), x.get('peak_gib', x.get('memory_gib','')))"
done
echo "total $(( $(date +%s) - T_START )) s"
