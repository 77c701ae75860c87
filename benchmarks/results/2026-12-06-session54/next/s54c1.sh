set -u
# Fifty-fourth session, call1. On an H200: the fifty-second session's s52c1.sh (the user's path
# at 4 x 2048 beside the reference, attention against cuDNN held alike, every ctest binary). On
# an H100: first the fifty-third session's diagnosis (s53c2.sh: why the deferred dQ was slower,
# its noadd / main-noadd timing forms), built from .gpu/diag/attention_sm90.cu (main's file with
# next/deferred-dq-forms.patch and next/diag-noadd.patch of the fifty-third session applied;
# timing only, not for main), then main's file restored and the whole GPU suite on it (every
# ctest binary with LORA4J_REQUIRE_GPU=1, the Java GPU tests, the demo on the GPU), which has not
# run since the fifty-third session's Java changes.
# Needs .device (scripts/gpu/pack-java.sh; scripts/gpu/aside.sh out first) and .gpu/diag.
# From the root: LIMIT=585 bash benchmarks/results/2026-12-06-session54/next/s54c1.sh
T0=$(date +%s)
LIMIT=${LIMIT:-585}
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "gpu: $GPU"
if [[ "$GPU" == *H200* ]]; then
  LIMIT=$LIMIT bash benchmarks/results/2026-12-05-session52/next/s52c1.sh
  echo "done at $(( $(date +%s) - T0 )) s"
  exit 0
fi
REAL_OUT=$OUT
F=native/src/cuda/kernels/attention_sm90.cu
cp $F /tmp/attention_sm90.main.cu
cp .gpu/diag/attention_sm90.cu $F
mkdir -p $REAL_OUT/diag
OUT=$REAL_OUT/diag timeout 200 bash benchmarks/results/2026-12-05-session53/next/s53c2.sh \
  > $REAL_OUT/diag/out.txt 2>&1
echo "diag rc=$? at $(( $(date +%s) - T0 )) s"
cp /tmp/attention_sm90.main.cu $F
cmp -s $F /tmp/attention_sm90.main.cu && echo "main's attention_sm90.cu restored"
LEFT=$(( LIMIT - ($(date +%s) - T0) ))
echo "whole suite with $LEFT s left"
export OUT=/tmp/o54; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS="80;90" timeout $(( LEFT - 20 )) bash scripts/gpu/run.sh \
  > $OUT/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T0 )) s"
tar -C $OUT -czf $REAL_OUT/suite.tgz .
grep -E "tests passed|Skipped|Failed|\*\*\*|SKIP" $OUT/ctest.log | head -20
tail -8 $OUT/java-summary.log 2>/dev/null
grep -E "^step|eval|final|skipped" $OUT/demo-cuda.log 2>/dev/null | tail -4
tail -4 $OUT/run.log
echo "---- diag"
tail -30 $REAL_OUT/diag/out.txt
echo "done at $(( $(date +%s) - T0 )) s"
