set -u
# Fifty-fifth session, call4 (H100 or H200), on .gpu/diag/attention_sm90.cu = main's file plus
# forms-f16.patch here: call3's forms with (a) form 7 (defer-f16)'s loader warp reading its row
# norms without bank conflicts (each lane's 16-byte chunks from (row + j) & 7; call3's reads were
# 32-way conflicted), (b) form 8 (defer-f16-early): form 7 with the loader's lse / delta barrier
# arrived before the norms and the scales on a barrier of their own (bar_scl), waited on by the
# consumers only before they pack dS^T. Call3 put form 7 at 1.58x / 1.61x main with the board
# under its power cap (the SMs waiting). (1) build; (2) test_ops_cuda's attention cases with
# each; (3) held A/B main, defer-f16, defer-f16-early, two rounds.
# Needs .gpu. From the root: LIMIT=160 bash benchmarks/results/2026-12-06-session55/call4/s55c4.sh
T0=$(date +%s)
LIMIT=${LIMIT:-160}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
W=/tmp/w554; mkdir -p $W
B=native/build-gpu
F=native/src/cuda/kernels/attention_sm90.cu
cp $F /tmp/attention_sm90.main.cu
cp .gpu/diag/attention_sm90.cu $F
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 240 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
cp /tmp/attention_sm90.main.cu $F
for f in defer-f16 defer-f16-early; do
  (cd $B && LORA4J_ATTN_BWD_FORM=$f LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 60 ./test_ops_cuda) > $W/ops-$f.log 2>&1
  echo "test_ops_cuda attention $f rc=$? pass $(grep -ac PASS $W/ops-$f.log) fail $(grep -ac FAIL $W/ops-$f.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
done
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 40 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held defer-f16 1; held defer-f16-early 1
held defer-f16-early 2; held defer-f16 2; held main 2
tar -C $W -czf $OUT/logs.tgz --exclude=b .
cat $W/sum.log
python3 benchmarks/compare.py --held-ab $W/held.jsonl
echo "done at $(( $(date +%s) - T0 )) s"
