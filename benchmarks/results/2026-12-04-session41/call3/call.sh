set -u
# Forty-first session, call 3, on call2's tree plus: the decode GEMV two rows a warp where the row
# count is even (LORA4J_GEMV_ROWS=1 one row, the same bits), the decode attention's shares merged by
# each kv head's last block (LORA4J_DECODE_MERGE_LAST=0 the merge kernel, the same bits), and
# set_weight uploading bf16 from the caller's memory in one flat copy (the former host copy and 2D
# pageable copy took 13-16 s of call2's 7B loads; call1's patch measured this path at 2.6-3.0 s).
# 1) build, every ctest binary but test_realwidth_cuda with LORA4J_REQUIRE_GPU=1, the Java GPU
# tests; 2) `lora4j generate`, random 7B folder, 512 tokens greedy: default, ROWS=1, MERGE_LAST=0
# in turn three times (13-token prompt), then the ~2750-token prompt once each; 3) a kernel trace of
# the default. Predicted: rows 2 -0.1 ms a step (o, down, LM head near the pairs kernel's
# ~3.76 TB/s); merge in the last block -0.1 ms (32 launches and 3.3 us kernels fewer); load ~3 s.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w3; mkdir -p $W
export OUT=/tmp/o3a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 300 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
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
  gen gen-rows1 LORA4J_GEMV_ROWS=1 "$P"
  gen gen-merge0 LORA4J_DECODE_MERGE_LAST=0 "$P"
done
gen long-default LORA4J_NONE=1 "$LONG"
gen long-rows1 LORA4J_GEMV_ROWS=1 "$LONG"
gen long-merge0 LORA4J_DECODE_MERGE_LAST=0 "$LONG"
wait $KB
gen trace "CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace.txt LORA4J_KERNEL_TRACE_PAUSE_US=20000" "$P"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "^\[decode\]" $T | cut -c1-150
grep -a "merged by the last share" $T | cut -c1-120 | head -3
echo "gemv / pairs / decode attention lines: $(grep -a "^\[gemv\]\|^\[gemv pairs\]\|^\[decode attention\]" $T | grep -ac PASS) PASS, $(grep -a "^\[gemv\]\|^\[gemv pairs\]\|^\[decode attention\]" $T | grep -avc PASS) other"
grep -a "^\[gemv pairs\]" $T | grep -a "float64" | cut -c1-150
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err $W/long-*.err $W/trace-*.err; do echo "$(basename $f .err): $(head -1 $f | cut -c9-50) | $(tail -1 $f | cut -c1-150)"; done
for f in $W/gen-*.out; do cmp -s $f $(ls $W/gen-default-*.out | head -1) && echo same || echo "TEXT DIFFERS: $(basename $f)"; done | sort | uniq -c
for f in $W/long-*.out; do cmp -s $f $(ls $W/long-default-*.out | head -1) && echo same-long || echo "TEXT DIFFERS: $(basename $f)"; done | sort | uniq -c
sed -n 1,12p $W/trace.txt | cut -c1-150
grep -a "share   total" -A16 $W/trace.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
