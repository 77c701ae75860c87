set -u
# Forty-first session, call 4: the session's final tree (gemv_pairs, RoPE's arithmetic written
# once, the flat bf16 upload; call3's two rejected forms taken out). 1) build, every ctest binary
# including test_realwidth_cuda, with LORA4J_REQUIRE_GPU=1, and the Java GPU tests; 2) `lora4j
# generate`, random 7B folder, 512 tokens greedy: default and LORA4J_DECODE_FUSED=0 in turn (13-token
# prompt, three of each), then the ~2750-token prompt once each; wall time of each command in
# sum.log. Expected: call2's 4.74-4.78 ms a step against 5.61-5.70, loads ~3 s.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w4; mkdir -p $W
export OUT=/tmp/o4a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="" timeout 480 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
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
  gen gen-fused0 LORA4J_DECODE_FUSED=0 "$P"
done
gen long-default LORA4J_NONE=1 "$LONG"
gen long-fused0 LORA4J_DECODE_FUSED=0 "$LONG"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "^\[decode\]" $T | cut -c1-150
echo "gemv / pairs / decode attention lines: $(grep -a "^\[gemv\]\|^\[gemv pairs\]\|^\[decode attention\]" $T | grep -ac PASS) PASS, $(grep -a "^\[gemv\]\|^\[gemv pairs\]\|^\[decode attention\]" $T | grep -avc PASS) other"
grep -a "^\[gemv pairs\]" $T | grep -a "float64" | cut -c1-150
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err $W/long-*.err; do echo "$(basename $f .err): $(head -1 $f | cut -c9-50) | $(tail -1 $f | cut -c1-150)"; done
for a in $W/gen-default-*.out; do for b in $W/gen-fused0-*.out; do cmp -s $a $b && echo "same text: $(basename $a) $(basename $b)" || echo "TEXT DIFFERS: $(basename $a) $(basename $b)"; done; done | sort | uniq -c | head -3
grep -a "test_realwidth_cuda" $T | head -2
grep -a "^\[realwidth\]" $T | grep -av PASS | head -5
echo "total $(( $(date +%s) - T_START )) s"
