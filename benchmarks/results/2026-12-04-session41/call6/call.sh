set -u
# Forty-first session, call 6: the decode GEMV summing rows n and n + N/2 in one warp (two streams
# half the weight apart, as gemv_pairs' row pairs are; call3's adjacent pair was slower), default
# where N is even, LORA4J_GEMV_ROWS=1 one row. 1) build, test_ops_cuda and test_decode_cuda with
# LORA4J_REQUIRE_GPU=1 (the form bitwise its CPU twin at every gemv case; the engine's logits
# bitwise ROWS=1's); 2) `lora4j generate`, random 7B folder, 512 tokens greedy, 13-token prompt,
# default and ROWS=1 in turn three times. Predicted: o / down / LM head (1.64 ms a step in call5's
# per-op times) -0.1 to -0.2 ms if the far pair reads as gemv_pairs does (~3.7 TB/s); else kept out.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w6; mkdir -p $W
export OUT=/tmp/o6a; mkdir -p $OUT
STEPS="build test" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" timeout 300 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
[ -d /tmp/m7b ] || $J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
P="Write a long story about a lighthouse keeper."
gen() {  # name env prompt
  n=$1-$(date +%s%N | tail -c 5)
  env $2 timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
    --device cuda --prompt "$3" --max-new-tokens 512 --temperature 0 --seed 1 > $W/$n.out 2> $W/$n.err
  echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
for r in 1 2 3; do
  gen gen-default LORA4J_NONE=1 "$P"
  gen gen-rows1 LORA4J_GEMV_ROWS=1 "$P"
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "GEMV_ROWS\|DECODE_FUSED=0: logits" $T | cut -c1-150
echo "gemv / pairs lines: $(grep -a "^\[gemv\]\|^\[gemv pairs\]" $T | grep -ac PASS) PASS, $(grep -a "^\[gemv\]\|^\[gemv pairs\]" $T | grep -avc PASS) other"
for f in $W/gen-*.err; do echo "$(basename $f .err): $(head -1 $f | cut -c9-50) | $(tail -1 $f | cut -c1-150)"; done
for f in $W/gen-*.out; do cmp -s $f $(ls $W/gen-default-*.out | head -1) && echo same || echo "TEXT DIFFERS: $(basename $f)"; done | sort | uniq -c
echo "total $(( $(date +%s) - T_START )) s"
