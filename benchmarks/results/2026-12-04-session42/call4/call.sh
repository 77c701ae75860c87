set -u
# Forty-second session, call 4. Call 3's test_ops_cuda failed its gemv pairs case at K 1000
# (125 chunks: not whole rounds of 32 x 4): the __syncwarp sat in a loop that part of the warp
# left early. The unrolled rounds are now as many on every lane (the rest one chunk a lane, each
# lane's chunks in the same order: same bits); ptxas gives 52 / 100 registers (46 / 98 in call 3).
# 1) build, test_ops_cuda and test_decode_cuda with LORA4J_REQUIRE_GPU=1; 2) `lora4j generate`,
# random 7B folder, 512 tokens greedy, default and LORA4J_DECODE_PDL=0 in turn, the ~2,750-token
# prompt once each. Expected: call 3's 4.31-4.33 ms (long 4.98) unless the registers cost.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w4; mkdir -p $W
export OUT=/tmp/o4a; mkdir -p $OUT
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
  gen gen-pdl0 LORA4J_DECODE_PDL=0 "$P"
done
gen long-default LORA4J_NONE=1 "$LONG"
gen long-pdl0 LORA4J_DECODE_PDL=0 "$LONG"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log | head -2
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
echo "gemv / gemv pairs lines: $(grep -a '^\[gemv\]\|^\[gemv pairs\]' $T | grep -ac PASS) PASS, $(grep -a '^\[gemv\]\|^\[gemv pairs\]' $T | grep -avc PASS) other"
grep -a "K=1000" $T | head -4 | cut -c1-150
grep -a "PDL" $T | cut -c1-150
for f in $W/gen-*.err $W/long-*.err; do echo "$(basename $f .err): $(tail -1 $f | sed 's/.*decode steps in //' | cut -c1-80)"; done
for b in $W/gen-*.out; do cmp -s $(ls $W/gen-pdl0-*.out | head -1) $b && echo same || echo "DIFFERS $(basename $b)"; done | sort | uniq -c
cmp -s $W/long-default-*.out $W/long-pdl0-*.out && echo "long: same text" || echo "long: TEXT DIFFERS"
echo "total $(( $(date +%s) - T_START )) s"
