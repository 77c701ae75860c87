set -u
# Written in the thirty-ninth session for the next one's first GPU call. Before it, on the build
# machine: `git apply benchmarks/results/2026-12-04-session39/next/decode-gu-unfused.patch` (decode
# calls under 128 rows take the unfused gate/up path; LORA4J_DECODE_GU_UNFUSED=0 keeps the fused
# kernel; new test native/tests/test_decode_cuda.cpp; written and built here, never run on a GPU),
# `mvn -B -ntp -q -DskipTests -DskipNativeTests=true package`, `bash scripts/gpu/pack-java.sh`,
# `scripts/gpu/aside.sh out <session folder>`; copy this script into the session's callN/; carry
# [".device"].
# 1) build, every ctest binary but test_realwidth_cuda with LORA4J_REQUIRE_GPU=1 (test_decode_cuda:
#    the default decode bitwise the unfused engine's, both paths within 2e-2 of the forward), the
#    Java GPU tests; 2) `lora4j generate` on the random 7B folder, 512 new tokens, the switch off and
#    on alternately, greedy and sampled. Measure: the decode step's ms from generate's stderr line
#    (thirty-ninth session call5/6: 7.8-8.4 ms, floor ~3.4; swiglu_gu_sm90 108 us a layer of it).
#    Predicted: ~-1.5 ms a step (32 x (108 - ~2 x 30 - a SwiGLU forward of one row)).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w1; mkdir -p $W
export OUT=/tmp/o1a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 280 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
$J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
P="Write a long story about a lighthouse keeper."
for temp in 0 1.0; do
  for u in 0 1 0 1; do
    n=gen-t$temp-unfused$u-$(date +%s%N | tail -c 5)
    LORA4J_DECODE_GU_UNFUSED=$u timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b \
      --device cuda --prompt "$P" --max-new-tokens 512 --temperature $temp --seed 1 > $W/$n.out 2> $W/$n.err
    echo "$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  done
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -8 | cut -c1-200
grep -a "^\[decode\]" $T | cut -c1-160
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err; do echo "$(basename $f .err): $(tail -1 $f | cut -c1-170)"; done
echo "total $(( $(date +%s) - T_START )) s"
