set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-330}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-second session, call3 (the device budget left no room for the user's path). This tree =
# main eb1c839. 1. main's engine and NF4 tests (call2 found the NF4 merge's memory check 6,144
# bytes off: a merged bf16 engine kept its blocks' A rows; pack_qkv now sizes them to the
# adapter; the engine test's AdamW steps moved into a helper); 2. branch qkv-pair
# (.gpu/qkvpair.tgz: q, k and v's LoRA pair passes in one launch): its ops and engine tests,
# paired steps against LORA4J_QKV_PAIR_ONE=0, per-op times.
STEPS=build CUDA_ARCHS=90 timeout 120 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "main build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
(cd native/build-gpu && LORA4J_REQUIRE_GPU=1 timeout 60 ./test_nf4_cuda > /tmp/nf4.log 2>&1; echo "main test_nf4_cuda rc=$?"; LORA4J_REQUIRE_GPU=1 timeout 60 ./test_engine_cuda > /tmp/eng.log 2>&1; echo "main test_engine_cuda rc=$? at $(( $(date +%s) - T_START )) s") >> /tmp/sum.log
mkdir -p /tmp/qp && tar -C /tmp/qp -xzf .gpu/qkvpair.tgz
(cmake -S /tmp/qp/native -B /tmp/qp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/qp-build.log 2>&1 && timeout 120 cmake --build /tmp/qp/b -j $(nproc) >> /tmp/qp-build.log 2>&1; echo "qkv-pair build rc=$? at $(( $(date +%s) - T_START )) s") >> /tmp/sum.log
QB=/tmp/qp/b
(cd $QB && LORA4J_REQUIRE_GPU=1 timeout 60 ./test_ops_cuda > /tmp/qp-ops.log 2>&1; echo "qkv-pair test_ops_cuda rc=$?"; LORA4J_REQUIRE_GPU=1 timeout 40 ./test_engine_cuda > /tmp/qp-eng.log 2>&1; echo "qkv-pair test_engine_cuda rc=$? at $(( $(date +%s) - T_START )) s") >> /tmp/sum.log
: > /tmp/pairs.log
if [ $(left) -gt 70 ]; then
  LORA4J_BENCH_PAIRS=16 LORA4J_BENCH_AB=LORA4J_QKV_PAIR_ONE=0 LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout $(( $(left) - 30 )) $QB/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/qkvpair /" >> /tmp/pairs.log
fi
if [ $(left) -gt 25 ]; then
  LORA4J_PHASE_TIMES=/tmp/ph.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout $(( $(left) - 3 )) $QB/bench_cuda > /tmp/bph.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph.jsonl /tmp/ph.jsonl > /tmp/qp-phases.txt 2>&1
fi
echo "done at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
grep -a "FAIL\|multi\|qkv pair\|lora_dy\|qkv block\|after the merge" /tmp/qp-ops.log /tmp/qp-eng.log /tmp/nf4.log /tmp/eng.log | cut -c1-220 > /tmp/key.txt
cp /tmp/sum.log /tmp/key.txt /tmp/pairs.log /tmp/qp-phases.txt /tmp/nf4.log /tmp/eng.log /tmp/qp-eng.log $OUT/ 2>/dev/null
gzip -c /tmp/qp-ops.log > $OUT/qp-ops.log.gz
cat /tmp/sum.log
echo "== failures"; grep -a "FAIL" /tmp/key.txt | head -8
echo "== main NF4 merge memory"; grep -a "after the merge" /tmp/nf4.log | cut -c1-170 | head -4
echo "== qkv-pair"; grep -a "multi: .*O=4096\|pair passes in one launch vs three, worst\|one launch" /tmp/key.txt | cut -c1-170 | head -10; grep -ac PASS /tmp/key.txt
grep -a "ms per step\|dy B + dLoRA_B, self_attn\|LoRA GEMMs" /tmp/qp-phases.txt 2>/dev/null | head -8 | cut -c1-120
python3 benchmarks/ab.py /tmp/pairs.log 2>&1 | tail -1 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
