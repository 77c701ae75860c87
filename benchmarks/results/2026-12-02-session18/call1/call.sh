set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-585}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Prepared in the seventeenth session for the next one: paired A/B (bench_cuda with
# LORA4J_BENCH_AB: two engines in one process, steps alternated; the first GPU run of that mode,
# and of bench_cuda with a PEFT-initialized adapter). This tree = main; two branches built beside
# it (rebuild their archives first if main moved: git archive --format=tar.gz -o
# .gpu/branch-X.tgz X cmake native): dxf = down-dx-fold (down's input gradient and its LoRA term
# as one GEMM; LORA4J_DOWN_DX_FOLD=0 keeps the old path), aob = attn-o-bf16 (the attention
# backward's delta from the bf16 output, no fp32 copy of O: -4 GiB at 4 x 2048;
# LORA4J_ATTN_O_BF16=0 keeps the copy). Pairs at 32 layers, 4 x 2048 both settings; then the two
# branches' engine, golden, NF4 and offload tests with the time left. Next call: the real-width
# cases of what is merged, then the user's path (README table; aob moves its GiB column).
for v in dxf:down-dx-fold aob:attn-o-bf16; do
  n=${v%%:*}; b=${v#*:}
  mkdir -p /tmp/$n && tar -C /tmp/$n -xzf .gpu/branch-$b.tgz && ln -sfn $PWD/java /tmp/$n/java
  (cmake -S /tmp/$n/native -B /tmp/build-$n -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/$n-cfg.log 2>&1 && nice cmake --build /tmp/build-$n -j 6 > /tmp/$n-build.log 2>&1; echo "$n build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/bb.log) &
done
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "main build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/bb.log
wait
cat /tmp/bb.log > /tmp/pairs.log
pairrun() {  # label build assignments
  [ $(left) -lt 120 ] && { echo "$1 $3: skipped, $(left) s left" >> /tmp/pairs.log; return; }
  LORA4J_BENCH_AB="$3" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 150 $2/bench_cuda 2>&1 | sed "s/^/$1 /" >> /tmp/pairs.log
}
pairrun dxf /tmp/build-dxf LORA4J_DOWN_DX_FOLD=0
pairrun aob /tmp/build-aob LORA4J_ATTN_O_BF16=0
pairrun main native/build-gpu LORA4J_QKV_DX_FOLD=0
for n in aob dxf; do
  [ $(left) -lt 45 ] && continue
  (cd /tmp/build-$n && LORA4J_REQUIRE_GPU=1 timeout 40 ctest -V -R "test_engine_cuda|test_golden|test_nf4_cuda|test_offload_cuda" > /tmp/$n-tests.log 2>&1; echo "$n tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/pairs.log)
  # aob's real-width cases (dxf's ran in the seventeenth session's call3, engine code unchanged)
  if [ $n = aob ] && [ $(left) -gt 190 ]; then
    (cd /tmp/build-aob && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 60 )) ./test_realwidth_cuda > /tmp/aob-realwidth.log 2>&1; echo "aob realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/pairs.log)
  fi
done
cp /tmp/pairs.log /tmp/build.log /tmp/*-build.log /tmp/*-tests.log /tmp/aob-realwidth.log $OUT/ 2>/dev/null
cut -c1-300 /tmp/pairs.log
grep -a "FAIL\|test_realwidth_cuda:" /tmp/aob-realwidth.log 2>/dev/null | head -6
for n in dxf aob; do echo "== $n"; grep -a "Passed\|Failed\|FAIL" /tmp/$n-tests.log 2>/dev/null | cut -c1-200 | head -8; grep -a "down fold\|attn O bf16\|hd128 lora grads" /tmp/$n-tests.log 2>/dev/null | cut -c1-170 | head -14; done
python3 benchmarks/ab.py /tmp/pairs.log
echo "total $(( $(date +%s) - T_START )) s"
