set -u
# Fortieth session, call 6: where the decode attention kernel starts to pay (call 5, same code:
# ~270 keys 5.62 ms a decode step against 5.52 with LORA4J_DECODE_ATTENTION=0; ~3000 keys 6.35 /
# 6.38 against 6.60 / 6.61). `lora4j generate` 512 new tokens greedy on prompts of ~550 and
# ~1100 tokens (keys ~550-1060 and ~1100-1610 over the decode), default and
# LORA4J_DECODE_ATTENTION=0 alternately. No code change; no tests (call 5 ran them on this tree).
T_START=$(date +%s)
W=/tmp/w6; mkdir -p $W
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
$J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
echo "init rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
gen() {  # name env prompt
  n=$1-$(date +%s%N | tail -c 5)
  env $2 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
    --device cuda --prompt "$3" --max-new-tokens 512 --temperature 0 --seed 1 > $W/$n.out 2> $W/$n.err
  echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
for reps in 30 60; do
  PR=$(for i in $(seq 1 $reps); do printf 'The keeper climbed the stairs at dusk and lit the lamp number %d. ' $i; done)
  gen p$reps-default LORA4J_NONE=1 "$PR"
  gen p$reps-attn0 LORA4J_DECODE_ATTENTION=0 "$PR"
done
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
for f in $W/p*.err; do echo "$(basename $f .err): $(tail -1 $f | cut -c1-170)"; done
echo "total $(( $(date +%s) - T_START )) s"
