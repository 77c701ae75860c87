set -u
# Fifty-fifth session, call4 (H100 or H200): form 7 (defer-f16) again with its loader warp's row
# norms read without bank conflicts (forms-f16.patch here: call3's with each lane's 16-byte
# chunks taken from (row + j) & 7). Call3 put form 7 at 1.58x / 1.61x main's time with the
# board under its power cap (580 W): the consumers idle, the loader warp's 32-way conflicted
# reads of the dO tile (one bank group for 8 lanes of a quarter warp) the likely cause.
# (1) build; (2) test_ops_cuda's attention cases with defer-f16; (3) held A/B main and
# defer-f16, two rounds. Needs .gpu (prep.sh with this folder's patch).
# From the root: LIMIT=150 bash benchmarks/results/2026-12-06-session55/call4/s55c4.sh
T0=$(date +%s)
LIMIT=${LIMIT:-150}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
W=/tmp/w554; mkdir -p $W
B=native/build-gpu
F=native/src/cuda/kernels/attention_sm90.cu
cp $F /tmp/attention_sm90.main.cu
cp .gpu/diag/attention_sm90.cu $F
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 240 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
cp /tmp/attention_sm90.main.cu $F
(cd $B && LORA4J_ATTN_BWD_FORM=defer-f16 LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda) > $W/ops-f16.log 2>&1
echo "test_ops_cuda attention defer-f16 rc=$? pass $(grep -ac PASS $W/ops-f16.log) fail $(grep -ac FAIL $W/ops-f16.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 40 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held defer-f16 1; held defer-f16 2; held main 2
tar -C $W -czf $OUT/logs.tgz --exclude=b .
cat $W/sum.log
python3 benchmarks/compare.py --held-ab $W/held.jsonl
echo "done at $(( $(date +%s) - T0 )) s"
