set -u
# Prepared in the forty-eighth session, not run (its device time ran out): the listener thread after its handover lost the wake-up (817a698,
# the jar of that commit): lora4j train on the random 7B folder with -Dlora4j.listenerThread=false
# and true, three alternating pairs at 1 x 512 (no native build: the jar's
# CUDA backend). Predicted at 1 x 512: the listeners' share 1.2-1.3 -> <0.1 ms a step, and no
# longer the 0.4 ms handover of call2.
T0=$(date +%s)
O=/tmp/o; mkdir -p $O
tar -C /tmp -xJf .device/jre.tar.xz 2>/dev/null; J=/tmp/lora4j-jre/bin/java
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b \
  --tokenizer examples/models/tiny-mistral > $O/init.log 2>&1 || tail -5 $O/init.log
echo "init-model at $(( $(date +%s) - T0 )) s"
for set in 1x512:1 1x512:2 1x512:3; do
  s=${set%:*}; r=${set#*:}
  for lt in false true; do
    w=/tmp/clib-$s-$lt-$r; mkdir -p $w
    CLI_JAVA_OPTS=-Dlora4j.listenerThread=$lt CLI_RUN_TIMEOUT_S=100 timeout 120 python3 benchmarks/cli_bench.py \
      $J .device/lora4j-cli.jar /tmp/lora4j-cli/m7b $w $s > $O/cli-$s-$lt-$r.jsonl 2>&1
    echo "$s round $r listenerThread=$lt rc=$?"
    for f in $w/cli-*.log; do [ -f "$f" ] && cp "$f" "$O/$(basename "${f%.log}")-$lt-$r.log"; done
    grep -h "time per optimizer step" $w/cli-*.log | sed 's/.*(mean/(mean/' | cut -c1-260
  done
done
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > $O/gpu.txt 2>&1; cat $O/gpu.txt
(cd /tmp && tar czf $OUT/logs.tgz o 2>/dev/null)
echo "done at $(( $(date +%s) - T0 )) s"
