set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-590}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Prepared in the sixteenth session for the next one (rebuild the archives first if main moved:
# git archive --format=tar.gz -o .gpu/branch-X.tgz X cmake native). Two branches built beside
# this tree (main): sd = swiglu-dh-bf16 (the SwiGLU backward on a bf16 dh; LORA4J_SWIGLU_DH=fp32
# keeps fp32), df = down-fold (down's LoRA folded into its GEMM through h's spare columns). Their
# GPU tests (ops, engine, golden), the whole step 32 layers 4 x 2048 main / sd / df alternated
# twice, per-op times of both. The real-width cases of the one to merge go in the next call.
export LORA4J_TESTDATA=$PWD/java/src/test/resources/hf-reference
bb() { mkdir -p /tmp/$1 && tar -C /tmp/$1 -xzf $2 && cmake -S /tmp/$1/native -B $PWD/native/build-$1 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/$1cfg.log 2>&1 && nice cmake --build $PWD/native/build-$1 -j 6 > /tmp/$1build.log 2>&1; echo "$1 build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/bb.log; }
: > /tmp/bb.log
(bb sd .gpu/branch-swiglu-dh-bf16.tgz) &
P1=$!
(bb df .gpu/branch-down-fold.tgz) &
P2=$!
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
wait $P1 $P2
B=native/build-gpu
cat /tmp/bb.log > /tmp/ab.log
for v in sd df; do
  (cd native/build-$v && LORA4J_REQUIRE_GPU=1 timeout 150 ctest -V -R "test_ops_cuda|test_engine_cuda|test_golden" > /tmp/$v-tests.log 2>&1; echo "$v tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/ab.log)
done
for rep in 1 2; do for v in main sd df; do
  [ $(left) -lt 100 ] && continue
  BB=$B; [ $v != main ] && BB=native/build-$v
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done; done
for v in sd df; do
  [ $(left) -lt 50 ] && continue
  LORA4J_PHASE_TIMES=/tmp/ph-$v.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 40 native/build-$v/bench_cuda > /tmp/bph-$v.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph-$v.jsonl /tmp/ph-$v.jsonl > /tmp/phases-$v.txt 2>&1
  echo "== $v" >> /tmp/ab.log; grep -a "ms per step\|swiglu\|mlp.down_proj\|lora_B forward" /tmp/phases-$v.txt | head -8 >> /tmp/ab.log
done
if [ $(left) -gt 60 ]; then (cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 30 )) ctest -V -R "test_gemm_cuda" > /tmp/main-gemm.log 2>&1; echo "main test_gemm_cuda rc=$?" >> /tmp/ab.log); fi
cp /tmp/main-gemm.log /tmp/build.log /tmp/ab.log /tmp/sd-tests.log /tmp/df-tests.log /tmp/phases-*.txt $OUT/ 2>/dev/null
for v in sd df; do echo "== $v"; grep -a "FAIL\|Passed\|Failed" /tmp/$v-tests.log | cut -c1-200 | head -8; grep -a "hd128 lora grads\|LoRA folded) lora loss" /tmp/$v-tests.log | cut -c1-140 | head -6; done
cut -c1-200 /tmp/ab.log
python3 benchmarks/ab.py /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
