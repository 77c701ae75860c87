set -u
# Forty-second session, call 2. Call 1: with every PDL part on (launch attribute, L2 prefetch of
# each warp's first rows, each block releasing the next kernel at its start) the short-prompt
# decode step was slower (4.93-4.97 ms against 4.69-4.78 plain), the ~2,750-token one faster
# (5.42 against 5.51); LORA4J_GEMV_SYNC=1 under PDL 4.76-4.82. Here the parts apart, all on
# LORA4J_DECODE_PDL's bits (1 launch attribute, 2 prefetch, 4 early release), each with and
# without the sync, alternately: which part costs at short context. Then the GEMV probe (the
# session-41 probe copied beside this script: call 1's run missed it) with and without sync.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
export OUT=/tmp/o2a; mkdir -p $OUT
D=benchmarks/results/2026-12-04-session42/call2
(nvcc -O3 -std=c++17 -arch=sm_90 -I native/src -I native/include $D/gemv_probe.cu -o /tmp/probe > $W/probe-build.log 2>&1; echo "probe build rc=$?" >> $W/sum.log) &
PB=$!
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
  for pdl in 0 1 3 5 7; do
    gen gen-p$pdl-s0 "LORA4J_DECODE_PDL=$pdl LORA4J_GEMV_SYNC=0" "$P"
    gen gen-p$pdl-s1 "LORA4J_DECODE_PDL=$pdl LORA4J_GEMV_SYNC=1" "$P"
  done
done
for pdl in 0 1 7; do gen long-p$pdl-s1 "LORA4J_DECODE_PDL=$pdl LORA4J_GEMV_SYNC=1" "$LONG"; done
wait $PB
/tmp/probe > $W/probe.txt 2>&1
LORA4J_GEMV_SYNC=1 /tmp/probe > $W/probe-sync.txt 2>&1
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log | tail -4
for f in $W/gen-*.err $W/long-*.err; do echo "$(basename $f .err | sed 's/-[0-9]*$//') $(tail -1 $f | sed 's/.*tokens\/s, //; s/ a token)//')"; done | sort | awk '{a[$1]=a[$1]" "$2} END {for (k in a) print k, a[k]}' | sort
for b in $W/gen-*.out; do cmp -s $(ls $W/gen-p0-s0-*.out | head -1) $b && echo same || echo "DIFFERS $(basename $b)"; done | sort | uniq -c
for b in $W/long-*.out; do cmp -s $(ls $W/long-p0-s1-*.out | head -1) $b && echo "long same" || echo "long DIFFERS $(basename $b)"; done | sort | uniq -c
paste $W/probe.txt $W/probe-sync.txt | cut -c1-120
echo "total $(( $(date +%s) - T_START )) s"
