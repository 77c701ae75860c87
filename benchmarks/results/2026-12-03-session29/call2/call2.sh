set -u
# Twenty-ninth session, call2: the frozen GEMMs' cuBLASLt algorithms under the card's sustained
# power cap (bench_gemm_cuda --sustain-algos): each GEMM's heuristic's first six algorithms, one
# GEMM varied at a time in the eleven-GEMM loop, then the fastest set against all-first,
# alternated. nvidia-smi samples power, clock and throttle reasons throughout.
T_START=$(date +%s)
W=/tmp/w2; mkdir -p $W
B=native/build-gemm
cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > $W/conf.log 2>&1
timeout 200 cmake --build $B -j "$(nproc)" --target bench_gemm_cuda > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
nvidia-smi --query-gpu=timestamp,power.draw,clocks.sm,clocks_throttle_reasons.active --format=csv -lms 250 > $W/power.csv 2>&1 &
SMI=$!
timeout 420 $B/bench_gemm_cuda --algos 6 --data model --sustain-algos 1.2 > $W/gemm.txt 2>&1
echo "bench rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
kill $SMI
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "^#" $W/gemm.txt | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
