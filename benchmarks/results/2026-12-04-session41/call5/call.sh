set -u
# Forty-first session, call 5 (no build: the jar packed for call4, 3cad529): per-op times of the
# decode step (LORA4J_PHASE_TIMES records each decode call as a step), `lora4j generate` on the
# random 7B folder, 13-token prompt, 256 tokens greedy, default and LORA4J_DECODE_FUSED=0; for the
# next session's choice between o / down, RMSNorm and the attention. A summary table last.
W=/tmp/w5; mkdir -p $W
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
$J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
P="Write a long story about a lighthouse keeper."
for v in default fused0; do
  e=LORA4J_NONE=1; [ $v = fused0 ] && e=LORA4J_DECODE_FUSED=0
  env $e LORA4J_PHASE_TIMES=$W/phases-$v.jsonl timeout 120 $J $JO -jar .device/lora4j-cli.jar generate \
    --model /tmp/m7b --device cuda --prompt "$P" --max-new-tokens 256 --temperature 0 --seed 1 \
    > $W/gen-$v.out 2> $W/gen-$v.err
  echo "$v rc=$?: $(tail -1 $W/gen-$v.err)"
done
tar -C $W -czf $OUT/logs.tgz .
for v in default fused0; do
  echo "== $v"
  python3 -c "
import json,sys
for l in open('$W/phases-$v.jsonl'):
    r=json.loads(l)
    print('%9.4f ms a step  %6s calls  %s' % (r.get('ms_per_step',0), r.get('calls_per_step', r.get('steps','')), r['phase_times']))
" | head -16
done
