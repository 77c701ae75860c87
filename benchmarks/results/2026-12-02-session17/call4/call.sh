set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-310}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Seventeenth session, call4: call3's main runs failed (its main build made bench_cuda without the
# lora4j_cuda backend it loads). main (.gpu/base-main.tgz) built with both, this tree (branch
# down-dx-fold) beside it; the whole step 32 layers 4 x 2048 main / fold alternated.
mkdir -p /tmp/main && tar -C /tmp/main -xzf .gpu/base-main.tgz
(cmake -S /tmp/main/native -B /tmp/build-main -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/main-cfg.log 2>&1 && nice cmake --build /tmp/build-main -j 8 --target bench_cuda lora4j_cuda > /tmp/main-build.log 2>&1; echo "main build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/bb.log) &
P1=$!
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "branch build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/bb.log
wait $P1
cat /tmp/bb.log > /tmp/ab.log
for rep in 1 2 3; do for v in main fold; do
  [ $(left) -lt 40 ] && continue
  BB=native/build-gpu; [ $v = main ] && BB=/tmp/build-main
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep "train_step\|rror" | sed "s/^/$v /" >> /tmp/ab.log
done; done
cp /tmp/ab.log /tmp/main-build.log $OUT/ 2>/dev/null
cut -c1-150 /tmp/ab.log
python3 benchmarks/ab.py /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
