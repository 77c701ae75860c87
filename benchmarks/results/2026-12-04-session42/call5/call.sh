set -u
# Forty-second session, call 5 (an experiment on 9f65d3f's tree + experiment.patch's LORA4J_DECODE_SPLIT_KEYS, not
# kept as a switch): the decode attention's keys a share (32 by default: ~9 shares and the merge
# kernel at ~270 keys, 64 shares at ~2,750) at 32 / 64 / 128 / 512 under PDL. Call 3's trace: the
# attention 7.6 us and its merge 3.4 us a layer at a short prompt, 0.34 ms a step, where its
# bytes (~1 MB a layer) take ~0.3 us: latency. `lora4j generate`, random 7B folder, 512 tokens
# greedy, the 13-token prompt twice each and the ~2,750-token one once each, in turn. No build on
# the device: the jar carries the library.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w5; mkdir -p $W
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
[ -d /tmp/m7b ] || $J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
echo "init at $(( $(date +%s) - T_START )) s" >> $W/sum.log
P="Write a long story about a lighthouse keeper."
LONG=$(for i in $(seq 1 150); do printf 'The keeper climbed the stairs at dusk and lit the lamp number %d. ' $i; done)
gen() {  # name env prompt
  n=$1-$(date +%s%N | tail -c 5)
  env $2 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
    --device cuda --prompt "$3" --max-new-tokens 512 --temperature 0 --seed 1 > $W/$n.out 2> $W/$n.err
  echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
for r in 1 2; do
  for k in 32 64 128 512; do gen gen-k$k LORA4J_DECODE_SPLIT_KEYS=$k "$P"; done
done
for k in 32 64 128 512; do gen long-k$k LORA4J_DECODE_SPLIT_KEYS=$k "$LONG"; done
tar -C $W -czf $REAL_OUT/logs.tgz .
tail -2 $W/sum.log
for f in $W/gen-*.err $W/long-*.err; do echo "$(basename $f .err | sed 's/-[0-9]*$//') $(tail -1 $f | sed 's/.*tokens\/s, //; s/ a token)//')"; done | sort -V | awk '{a[$1]=a[$1]" "$2} END {for (k in a) print k, a[k]}' | sort -V
for b in $W/gen-*.out; do cmp -s $(ls $W/gen-k32-*.out | head -1) $b && echo same || echo "DIFFERS $(basename $b)"; done | sort | uniq -c
for b in $W/long-*.out; do cmp -s $(ls $W/long-k32-*.out | head -1) $b && echo "long same" || echo "long DIFFERS $(basename $b)"; done | sort | uniq -c
echo "total $(( $(date +%s) - T_START )) s"
