set -u
# Twenty-ninth session, call4: the bound of one lever before it is built: gate's and up's input
# gradients as one GEMM over K = 2 x 14336 (fp32 dx written once) against the two GEMMs the
# engine runs (the second accumulating onto the first's dx), in bursts and back to back with the
# other frozen GEMMs for 20 s under the power cap (bench_gemm_cuda --sustain, model data).
T_START=$(date +%s)
W=/tmp/w4; mkdir -p $W
B=native/build-gemm
cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > $W/conf.log 2>&1
timeout 200 cmake --build $B -j "$(nproc)" --target bench_gemm_cuda > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for round in 1 2; do
  timeout 200 $B/bench_gemm_cuda --algos 4 --data model --sustain 20 > $W/gemm-$round.txt 2>&1
  echo "round $round rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "^#" $W/gemm-1.txt $W/gemm-2.txt | grep -a "dX" | cut -c1-170
echo "total $(( $(date +%s) - T_START )) s"
