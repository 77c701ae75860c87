set -u
# Written in the fortieth session for the next one's first GPU call. Before it, on the build
# machine: `git apply benchmarks/results/2026-12-04-session40/next/s41.patch`, which holds
# (a) decode calls' GEMV only for weights up to 64 MB (LORA4J_DECODE_GEMV_MAX_MB, 0 no limit):
# gate / up / down and the LM head back to cuBLASLt; LORA4J_GEMV_ROWS=2: two outputs a warp, the
# same bits; tests: test_ops_cuda's gemv cases in both forms against the CPU twin,
# test_decode_cuda's limit = LORA4J_DECODE_GEMV=0 bitwise when nothing fits and ROWS=2 = default
# bitwise; (b) set_weight's uploads through two pinned staging buffers, bf16 read in place
# (LORA4J_LOAD_STAGING=0: the former host copy and pageable upload); new test_load_cuda (every
# weight and the logits bitwise the direct upload's, 32 MB and 64 KB chunks, strided rows, fp32
# input). Built here, never run on a GPU. Then `mvn -B -ntp -q -DskipTests -DskipNativeTests=true
# package`, `bash scripts/gpu/pack-java.sh`, `scripts/gpu/aside.sh out <session folder>`; copy
# this script into the session's callN/; carry [".device"].
# 1) build, every ctest binary but test_realwidth_cuda with LORA4J_REQUIRE_GPU=1, the Java GPU
# tests; 2) `lora4j generate`, random 7B folder, 512 new tokens greedy, 13-token prompt: the
# default (limit 64 MB), LORA4J_DECODE_GEMV_MAX_MB=0 (the fortieth session's default: 5.62-5.65
# ms a step), LORA4J_DECODE_GEMV=0, LORA4J_GEMV_ROWS=2 with no limit, twice each in turn, and
# LORA4J_LOAD_STAGING=0 twice (its load line against the others'); the ~2750-token prompt,
# default and LORA4J_DECODE_ATTENTION=0. Predicted: the limit -0.3 ms a step (gate / up / down at
# cuBLASLt's 30 us against the kernel's ~34); ROWS=2 unknown; staging: the load 1-4 s shorter
# (~13 s of a 16-17 s generate is outside the engine's passes; not yet broken down). 3) a trace.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w1; mkdir -p $W
export OUT=/tmp/o1a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 300 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
(cmake -S native -B /tmp/kb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLORA4J_TESTS=ON > $W/kb-configure.log 2>&1 && cmake --build /tmp/kb --target lora4j_kernel_trace > $W/kb-build.log 2>&1; echo "trace lib rc=$?" >> $W/sum.log) &
KB=$!
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
  gen gen-default LORA4J_NONE=1 "$P"
  gen gen-nolimit LORA4J_DECODE_GEMV_MAX_MB=0 "$P"
  gen gen-gemv0 LORA4J_DECODE_GEMV=0 "$P"
  gen gen-rows2 "LORA4J_DECODE_GEMV_MAX_MB=0 LORA4J_GEMV_ROWS=2" "$P"
  gen gen-nostaging LORA4J_LOAD_STAGING=0 "$P"
done
gen long-default LORA4J_NONE=1 "$LONG"
gen long-attn0 LORA4J_DECODE_ATTENTION=0 "$LONG"
wait $KB
gen trace "CUDA_INJECTION64_PATH=/tmp/kb/liblora4j_kernel_trace.so LORA4J_KERNEL_TRACE_OUT=$W/trace.txt LORA4J_KERNEL_TRACE_PAUSE_US=20000" "$P"
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "^\[decode\]" $T | cut -c1-150
echo "gemv / decode attention lines: $(grep -a "^\[gemv\]\|^\[decode attention\]" $T | grep -ac PASS) PASS, $(grep -a "^\[gemv\]\|^\[decode attention\]" $T | grep -avc PASS) other"
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for f in $W/gen-*.err $W/long-*.err $W/trace-*.err; do echo "$(basename $f .err): $(grep -a 'loaded on' $f | cut -c1-60) | $(tail -1 $f | cut -c1-150)"; done
grep -a "^\[load\]" $T | cut -c1-150
sed -n 1,12p $W/trace.txt | cut -c1-150
grep -a "share   total" -A14 $W/trace.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
