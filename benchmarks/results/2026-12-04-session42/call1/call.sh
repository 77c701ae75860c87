set -u
# Forty-second session, call 1: a decode call's kernels launched with programmatic dependent
# launch (LORA4J_DECODE_PDL, default on at sm_90: RMSNorm, GEMV, gemv_pairs and the decode
# attention each start while the kernel before finishes, prefetching their first 4 KB of weight
# rows into L2 before griddepcontrol.wait), and the GEMV's loads issued before its products
# (LORA4J_GEMV_SYNC=1: a __syncwarp after each round of loads; same sums, same bits).
# 1) build, test_ops_cuda + test_decode_cuda with LORA4J_REQUIRE_GPU=1 (the review mend 81e4c43 and
#    this change; test_decode_cuda's new PDL-vs-plain bitwise checks), then the two again with
#    LORA4J_GEMV_SYNC=1; 2) the GEMV probe (next/gemv_probe.cu of session 41) with and without
#    LORA4J_GEMV_SYNC; 3) `lora4j generate`, random 7B folder, 512 tokens greedy, 13-token prompt:
#    default / LORA4J_DECODE_PDL=0 / LORA4J_GEMV_SYNC=1 in turn, three times each; ~2,750-token
#    prompt once each of default and PDL=0.
# Predicted: PDL -0.2 to -0.4 ms a step (of ~0.43 ms idle between ~260 launches, plus each
# GEMV's ramp overlapped with the kernel before); sync: unknown (the probe says first).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w1; mkdir -p $W
export OUT=/tmp/o1a; mkdir -p $OUT
STEPS="build test" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" timeout 420 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
B=native/build-gpu
(LORA4J_REQUIRE_GPU=1 LORA4J_GEMV_SYNC=1 LORA4J_OPS_ONLY=gemv timeout 200 $B/test_ops_cuda > $W/ops-sync.log 2>&1; echo "ops gemv sync rc=$?" >> $W/sum.log)
(LORA4J_REQUIRE_GPU=1 LORA4J_GEMV_SYNC=1 timeout 200 $B/test_decode_cuda > $W/decode-sync.log 2>&1; echo "decode sync rc=$?" >> $W/sum.log)
D=benchmarks/results/2026-12-04-session41/next
nvcc -O3 -std=c++17 -arch=sm_90 -I native/src -I native/include $D/gemv_probe.cu -o /tmp/probe > $W/probe-build.log 2>&1 || cat $W/probe-build.log
/tmp/probe > $W/probe.txt 2>&1
LORA4J_GEMV_SYNC=1 /tmp/probe > $W/probe-sync.txt 2>&1
echo "probe done at $(( $(date +%s) - T_START )) s" >> $W/sum.log
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
  gen gen-sync1 LORA4J_GEMV_SYNC=1 "$P"
done
gen long-default LORA4J_NONE=1 "$LONG"
gen long-pdl0 LORA4J_DECODE_PDL=0 "$LONG"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T $W/ops-sync.log $W/decode-sync.log | head -12 | cut -c1-200
grep -a "PDL" $T | cut -c1-150
echo "ops gemv (sync): $(grep -ac PASS $W/ops-sync.log) PASS $(grep -ac FAIL $W/ops-sync.log) FAIL; decode (sync): $(grep -ac PASS $W/decode-sync.log) PASS $(grep -ac FAIL $W/decode-sync.log) FAIL"
paste $W/probe.txt $W/probe-sync.txt | cut -c1-120
for f in $W/gen-*.err $W/long-*.err; do echo "$(basename $f .err): $(tail -1 $f | cut -c1-150)"; done
for a in $W/gen-default-*.out; do for b in $W/gen-pdl0-*.out $W/gen-sync1-*.out; do cmp -s $a $b && echo "same text" || echo "TEXT DIFFERS: $(basename $a) $(basename $b)"; done; done | sort | uniq -c | head -3
cmp -s $W/long-default-*.out $W/long-pdl0-*.out && echo "long: same text" || echo "long: TEXT DIFFERS"
echo "total $(( $(date +%s) - T_START )) s"
