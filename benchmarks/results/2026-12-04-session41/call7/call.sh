set -u
# Written in the forty-first session for the next one (carry nothing: no Java needed). The decode
# GEMV's forms timed alone (next/gemv_probe.cu: lib = gemv.cu as the engine runs it, xsmem = x in
# shared memory with the same order, split2 = two warps a row, other bits) at Mistral-7B's
# one-row shapes over >3 GB of rotating weight copies, and the SASS of gemv.cu's kernels: how many
# 128-bit global loads each loop issues before its first FFMA (whether the eight w chunks the
# source loads are in flight together). Call5's per-op times to compare with: o 14.2 us a layer
# (32 MB, ~2.4 TB/s), down 34.6 us (117 MB, ~3.4 TB/s) with launch gaps.
D=benchmarks/results/2026-12-04-session41/next
W=/tmp/w1; mkdir -p $W
nvcc -O3 -std=c++17 -arch=sm_90 -I native/src -I native/include $D/gemv_probe.cu -o /tmp/probe > $W/probe-build.log 2>&1 || { cat $W/probe-build.log; exit 1; }
/tmp/probe | tee $W/probe.txt
nvcc -O3 -std=c++17 -arch=sm_90 -I native/src -I native/include -cubin native/src/cuda/kernels/gemv.cu -o /tmp/gemv.cubin
cuobjdump -sass /tmp/gemv.cubin > $W/gemv.sass
awk '/Function :/ {name=$3} /LDG/ {ldg[name]++} /FFMA/ {ffma[name]++} END {for (n in ldg) printf "%6d LDG %6d FFMA  %s\n", ldg[n], ffma[n], substr(n,1,90)}' $W/gemv.sass
tar -C $W -czf $OUT/logs.tgz .
