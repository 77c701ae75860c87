set -u
# Forty-second session, call 3: the session's decode code as committed: programmatic dependent
# launch of a decode call's RMSNorm / GEMV / gemv_pairs / attention kernels (attribute and
# griddepcontrol.wait only: call 2 measured the early release and the L2 prefetch slower) and the
# GEMV's loads issued before its products (__syncwarp, no switch). 1) build, every ctest binary
# with LORA4J_REQUIRE_GPU=1, the Java GPU tests; 2) `lora4j generate`, random 7B folder, 512
# tokens greedy: default and LORA4J_DECODE_PDL=0 in turn (13-token prompt, three each), the
# ~2,750-token prompt once each; 3) a kernel trace of the default (per-kernel times and gaps under
# PDL, which phase times turn off). Expected: call 2's 4.34-4.36 ms (PDL) against 4.60-4.68.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w3; mkdir -p $W
export OUT=/tmp/o3a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="" timeout 480 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
(cmake -S native -B /tmp/kb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLORA4J_TESTS=ON > $W/kb-configure.log 2>&1 && cmake --build /tmp/kb --target lora4j_kernel_trace > $W/kb-build.log 2>&1; echo "trace lib rc=$?" >> $W/sum.log) &
KB=$!
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
wait $KB
gen trace "CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace.txt LORA4J_KERNEL_TRACE_PAUSE_US=20000" "$P"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log | head -3
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "PDL" $T | cut -c1-150
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err $W/long-*.err $W/trace-*.err; do echo "$(basename $f .err): $(tail -1 $f | sed 's/.*decode steps in //' | cut -c1-80)"; done
for b in $W/gen-*.out; do cmp -s $(ls $W/gen-pdl0-*.out | head -1) $b && echo same || echo "DIFFERS $(basename $b)"; done | sort | uniq -c
cmp -s $W/long-default-*.out $W/long-pdl0-*.out && echo "long: same text" || echo "long: TEXT DIFFERS"
sed -n 1,14p $W/trace.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
