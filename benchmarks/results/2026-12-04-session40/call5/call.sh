set -u
# Fortieth session, call 5: the decode attention's shares at long context. Call 4 (shares of 32
# keys, up to 256): ~2750-token prompt 6.28 ms a decode step against call 3's 6.03 with shares of
# 64; the merge kernel read the shares one latency at a time (over ~100 shares at ~3000 keys).
# Now at most 64 shares (of 32 keys or more) and the merge's loads eight in flight. 1) build,
# test_ops_cuda and test_decode_cuda with LORA4J_REQUIRE_GPU=1, the Java GPU tests (the golden
# greedy generation decodes on the GPU); 2) generate 512 tokens greedy, default and
# LORA4J_DECODE_ATTENTION=0 alternately: twice on the ~2750-token prompt, once on the 13-token
# one. Predicted: long prompt default below call 4's 6.28 ms (~6.0), short unchanged (~5.64).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w5; mkdir -p $W
export OUT=/tmp/o5a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" timeout 240 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
$J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
P="Write a long story about a lighthouse keeper."
LONG=$(for i in $(seq 1 150); do printf 'The keeper climbed the stairs at dusk and lit the lamp number %d. ' $i; done)
gen() {  # name env prompt
  n=$1-$(date +%s%N | tail -c 5)
  env $2 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
    --device cuda --prompt "$3" --max-new-tokens 512 --temperature 0 --seed 1 > $W/$n.out 2> $W/$n.err
  echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
for r in 1 2; do
  gen long-default LORA4J_NONE=1 "$LONG"
  gen long-attn0 LORA4J_DECODE_ATTENTION=0 "$LONG"
done
gen gen-default LORA4J_NONE=1 "$P"
gen gen-attn0 LORA4J_DECODE_ATTENTION=0 "$P"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "^\[decode attention\]" $T | grep -a "vs " | cut -c1-130 | head -30
grep -a "^\[decode\]" $T | grep -a "err=" | cut -c1-130
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err $W/long-*.err; do echo "$(basename $f .err): $(tail -1 $f | cut -c1-170)"; done
echo "total $(( $(date +%s) - T_START )) s"
