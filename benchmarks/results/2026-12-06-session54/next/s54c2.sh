set -u
# Fifty-fourth session, call2 (H100 or H200). Call1's diagnosis put form 1 without its dQ
# reductions (noadd) 23-26% under main's time; but noadd leaves the dQ product's registers unused,
# so ptxas may have dropped the product itself (a fifth of the tensor work). This call tells:
# (1) the HGMMA instructions of each backward instance (cuobjdump), (2) noadd-live, form 1 whose
# reductions sit behind a run-time condition that is never true (the product is kept), held
# beside main, noadd and main-noadd in three alternated rounds. .gpu/diag/attention_sm90.cu is
# main's file with the fifty-third session's deferred-dq-forms.patch, diag-noadd.patch and form 5
# (noadd-live); timing only, not for main. Then main's file restored and the Java GPU tests and
# the demo on the GPU (call1 packed a jar without the CUDA plugin, so they could not load it).
# Needs .device and .gpu. From the root: LIMIT=585 bash benchmarks/results/2026-12-06-session54/next/s54c2.sh
T0=$(date +%s)
LIMIT=${LIMIT:-585}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
W=/tmp/w4; mkdir -p $W
B=native/build-gpu
F=native/src/cuda/kernels/attention_sm90.cu
cp $F /tmp/attention_sm90.main.cu
cp .gpu/diag/attention_sm90.cu $F
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 300 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
OBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
$OBJ -sass $B/liblora4j_bench.so 2>/dev/null | awk '/Function :/ {f=$3} /HGMMA/ {c[f]++}
  END {for (k in c) if (k ~ /attn_bwd_sm90/) print c[k], k}' | sort -k2 > $W/hgmma.txt
echo "hgmma lines: $(wc -l < $W/hgmma.txt)" | tee -a $W/sum.log
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 40 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held noadd-live 1; held noadd 1; held main-noadd 1
held main-noadd 2; held noadd 2; held noadd-live 2; held main 2
held main 3; held noadd-live 3; held main-noadd 3; held noadd 3
echo "held done at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
cp /tmp/attention_sm90.main.cu $F
cmp -s $F /tmp/attention_sm90.main.cu && echo "main's attention_sm90.cu restored" | tee -a $W/sum.log
LEFT=$(( LIMIT - ($(date +%s) - T0) ))
STEPS="java" OUT=$W/java timeout $(( LEFT - 15 )) bash scripts/gpu/run.sh > $W/java-run.log 2>&1
echo "java rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
tar -C $W -czf $OUT/logs.tgz --exclude=b --exclude=build-gpu .
cat $W/sum.log
cat $W/hgmma.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
tail -6 $W/java/java-summary.log 2>/dev/null
grep -E "^step|eval|final|skipped|error" $W/java/demo-cuda.log 2>/dev/null | tail -4
tail -5 $W/java-run.log
echo "done at $(( $(date +%s) - T0 )) s"
