set -u
# Fifty-second session, call1. On an H200 (where the README's table was measured; none lent since
# the thirty-ninth session): the fiftieth session's s51c1.sh, the user's path at 4 x 2048 beside
# the reference, attention against cuDNN held alike, then every ctest binary. On an H100 (measured
# there in the fiftieth and fifty-first sessions): the whole GPU suite on this main instead
# (every ctest binary with LORA4J_REQUIRE_GPU=1, the Java GPU tests, the demo on the GPU), which
# the fifty-first session's last mend (the conversions as one template each) ran only in part.
# Needs .device (scripts/gpu/pack-java.sh; scripts/gpu/aside.sh out first). From the root:
#   LIMIT=585 bash benchmarks/results/2026-12-05-session52/next/s52c1.sh
T0=$(date +%s)
LIMIT=${LIMIT:-585}
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "gpu: $GPU"
if [[ "$GPU" == *H200* ]]; then
  LIMIT=$LIMIT bash benchmarks/results/2026-12-05-session50/next/s51c1.sh
else
  REAL_OUT=$OUT
  export OUT=/tmp/o52; mkdir -p $OUT
  STEPS="build test java" CUDA_ARCHS="80;90" timeout $(( LIMIT - 15 )) bash scripts/gpu/run.sh \
    > $OUT/run.log 2>&1
  echo "run.sh rc=$? at $(( $(date +%s) - T0 )) s"
  grep -E "tests passed|Skipped|Failed|\*\*\*|SKIP" $OUT/ctest.log | head -20
  cat $OUT/java-summary.log 2>/dev/null | tail -8
  grep -E "^step|eval|final|skipped" $OUT/demo-cuda.log 2>/dev/null | tail -6
  tail -15 $OUT/run.log
  tar -C $OUT -czf $REAL_OUT/logs.tgz .
fi
echo "done at $(( $(date +%s) - T0 )) s"
