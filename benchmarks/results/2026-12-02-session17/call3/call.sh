set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-585}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Seventeenth session, call3: this tree = branch down-dx-fold (down's input gradient and its LoRA
# term as one GEMM over [dy | s T] . [W_down; A]); main (.gpu/base-main.tgz, git archive of main's
# cmake/ and native/) built beside it. The branch's engine and golden tests,
# the whole step 32 layers 4 x 2048 main / fold alternated twice, the fold's per-op times, then
# the seven real-width cases on the branch with the time left.
mkdir -p /tmp/main && tar -C /tmp/main -xzf .gpu/base-main.tgz
(cmake -S /tmp/main/native -B /tmp/build-main -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/main-cfg.log 2>&1 && nice cmake --build /tmp/build-main -j 6 --target bench_cuda > /tmp/main-build.log 2>&1; echo "main build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/bb.log) &
P1=$!
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "branch build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/build.log
wait $P1
B=native/build-gpu
cat /tmp/bb.log > /tmp/ab.log
tail -1 /tmp/build.log >> /tmp/ab.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 120 ctest -V -R "test_engine_cuda|test_golden" > /tmp/tests.log 2>&1; echo "engine+golden tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/ab.log)
for rep in 1 2; do for v in main fold; do
  [ $(left) -lt 230 ] && continue
  BB=$B; [ $v = main ] && BB=/tmp/build-main
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done; done
if [ $(left) -gt 200 ]; then
  LORA4J_PHASE_TIMES=/tmp/ph-fold.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 40 $B/bench_cuda > /tmp/bph-fold.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph-fold.jsonl /tmp/ph-fold.jsonl > /tmp/phases-fold.txt 2>&1
fi
T=$(( $(left) - 10 ))
(cd $B && LORA4J_REQUIRE_GPU=1 timeout $T ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
cp /tmp/ab.log /tmp/tests.log /tmp/phases-fold.txt /tmp/realwidth.log /tmp/build.log /tmp/main-build.log $OUT/ 2>/dev/null
echo "== tests"; grep -a "FAIL\|Passed\|Failed" /tmp/tests.log | cut -c1-200 | head -10
grep -a "down fold\|down dX" /tmp/tests.log | cut -c1-170 | head -24
grep -a "hd128 lora grads" /tmp/tests.log | cut -c1-140 | head -4
echo "== phases"; grep -a "ms per step\|swiglu\|mlp.down_proj\|down dX operands\|dX through LoRA\|dy B" /tmp/phases-fold.txt | head -9
echo "== realwidth"; grep -a "FAIL\|rc=" /tmp/realwidth.log | head -8; grep -a "grad " /tmp/realwidth.log | sort -t= -k2 -g | tail -2 | cut -c1-160; tail -2 /tmp/realwidth.log
echo "== ab"; cut -c1-120 /tmp/ab.log
python3 benchmarks/ab.py /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
