set -u
# Written in the forty-second session for the next one's first GPU call. Before it, here (no GPU):
#   git apply benchmarks/results/2026-12-04-session42/next/s43-greedy-device.patch
#   mvn -B -ntp -q -DskipTests -DskipNativeTests=true package && bash scripts/gpu/pack-java.sh
#   scripts/gpu/aside.sh out benchmarks/results/2026-12-04-session42   (and the new session's folder)
# The patch: CudaEngine::decode_greedy keeps each step's token on the device (greedy.cu:
# greedy_argmax_feed writes the argmax into the next step's ids_ / pos_; decode_feed the first
# step's), so the host queues a whole chunk of steps and waits once; LORA4J_DECODE_GREEDY_DEVICE=0
# takes Engine's step-by-step default (decode_next and the argmax on the host: main since
# f051f2c). Predicted: -0.15 to -0.25 ms a step at 7B (call3's trace: the GPU idle ~0.3 ms a step,
# most of it between steps while the logits travel to the host and the next token back).
# 1) build, test_ops_cuda (its greedy_argmax cases: ties, NaN, -inf against the host twin) and
#    test_decode_cuda (decode_greedy on the device and not: decode_next's argmax tokens, eos,
#    a full cache) with LORA4J_REQUIRE_GPU=1; 2) `lora4j generate`, random 7B folder, 512 tokens
#    greedy (the CLI streams through Generator's chunks of 1 doubling to 16): default and
#    LORA4J_DECODE_GREEDY_DEVICE=0 in turn, three each, and the ~2,750-token prompt once each; the
#    texts must match. ~4 min of device time.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w1; mkdir -p $W
export OUT=/tmp/o1a; mkdir -p $OUT
STEPS="build test" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" timeout 420 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
[ -d /tmp/m7b ] || $J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
P="Write a long story about a lighthouse keeper."
LONG=$(for i in $(seq 1 150); do printf 'The keeper climbed the stairs at dusk and lit the lamp number %d. ' $i; done)
gen() {  # name env prompt
  n=$1-$(date +%s%N | tail -c 5)
  env $2 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
    --device cuda --prompt "$3" --max-new-tokens 512 --temperature 0 --seed 1 > $W/$n.out 2> $W/$n.err
  echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
for r in 1 2 3; do
  gen gen-default LORA4J_NONE=1 "$P"
  gen gen-host LORA4J_DECODE_GREEDY_DEVICE=0 "$P"
done
gen long-default LORA4J_NONE=1 "$LONG"
gen long-host LORA4J_DECODE_GREEDY_DEVICE=0 "$LONG"
tar -C $W -czf $REAL_OUT/logs.tgz .
head -1 $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "^\[greedy argmax\]" $T | grep -avc PASS | sed 's/^/greedy argmax lines not PASS: /'
grep -a "decode_greedy\|PDL" $T | cut -c1-150
for f in $W/gen-*.err $W/long-*.err; do echo "$(basename $f .err): $(tail -1 $f | sed 's/.*decode steps in //' | cut -c1-80)"; done
for b in $W/gen-*.out; do cmp -s $(ls $W/gen-host-*.out | head -1) $b && echo same || echo "DIFFERS $(basename $b)"; done | sort | uniq -c
cmp -s $W/long-default-*.out $W/long-host-*.out && echo "long: same text" || echo "long: TEXT DIFFERS"
echo "total $(( $(date +%s) - T_START )) s"
