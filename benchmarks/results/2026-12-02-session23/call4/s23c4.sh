set -u
T_START=$(date +%s)
export OUT
# Twenty-third session, call4: Nsight Compute on the fused down input gradient + SwiGLU backward
# (branch swiglu-dx's first form, 2278882: one block per 128 x 256 tile, no clusters; .gpu/sdx-v1.tgz)
# in bench_cuda's step at 4 x 2048 (2 layers, one timed step), and on the unfused path's GEMMs and
# SwiGLU backward (LORA4J_SWIGLU_DX_FUSED=0) in the same build: where the fused kernel's time goes.
mkdir -p /tmp/v1 && tar -C /tmp/v1 -xzf .gpu/sdx-v1.tgz
(cmake -S /tmp/v1/native -B /tmp/v1/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/b.log 2>&1 && timeout 150 cmake --build /tmp/v1/b -j $(nproc) --target bench_cuda lora4j_cuda >> /tmp/b.log 2>&1; echo "build rc=$? at $(( $(date +%s) - T_START )) s") > /tmp/ncu.log
tail -3 /tmp/b.log
B=/tmp/v1/b
export LORA4J_CUDA_LIBRARY=$B/liblora4j_cuda.so
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" >> /tmp/ncu.log
SEC="--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis --section SchedulerStats"
LORA4J_BENCH_LAYERS=2 LORA4J_BENCH_STEPS=1 LORA4J_BENCH_SETTINGS=4x2048-none timeout 120 $NCU --clock-control none \
  --kernel-name regex:"swiglu_dx_sm90" --launch-count 2 $SEC -o /tmp/fused $B/bench_cuda >> /tmp/ncu.log 2>&1
echo "ncu fused rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/ncu.log
$NCU -i /tmp/fused.ncu-rep --page details > $OUT/ncu-fused.txt 2>&1
LORA4J_SWIGLU_DX_FUSED=0 LORA4J_BENCH_LAYERS=1 LORA4J_BENCH_STEPS=1 LORA4J_BENCH_SETTINGS=4x2048-none timeout 150 $NCU --clock-control none \
  --kernel-name regex:"gemm|xmma|swiglu_bwd" --launch-count 60 --section SpeedOfLight --section WarpStateStats --section LaunchStats \
  -o /tmp/unfused $B/bench_cuda >> /tmp/ncu.log 2>&1
echo "ncu unfused rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/ncu.log
$NCU -i /tmp/unfused.ncu-rep --page details > /tmp/ncu-unfused.txt 2>&1
gzip -c /tmp/ncu-unfused.txt > $OUT/ncu-unfused.txt.gz
gzip -f $OUT/ncu-fused.txt
cp /tmp/ncu.log $OUT/
cat /tmp/ncu.log | tail -4
zcat $OUT/ncu-fused.txt.gz | grep -a "swiglu_dx\|Duration\|DRAM Throughput\|L2 Cache Throughput\|L1/TEX Cache Throughput\|Compute (SM) Throughput\|Registers Per\|Stall\|Issue Slots Busy\|Tensor\|Executed Ipc A\|No Eligible\|Warp Cycles Per Issued" | cut -c1-140 | head -40
echo "== unfused: kernels over 0.3 ms"
python3 - <<'PY'
import re,gzip
txt=open('/tmp/ncu-unfused.txt',errors='replace').read()
blocks=re.split(r'\n  (?=\S)', txt)
for b in blocks:
    m=re.search(r'Duration\s+(\S+)\s+([\d.,]+)', b)
    if not m: continue
    unit,val=m.group(1),float(m.group(2).replace(',',''))
    ms = val/1000 if unit=='us' else (val if unit=='ms' else val/1e6)
    if ms<0.3: continue
    name=b.split('\n')[0][:110]
    def g(k):
        mm=re.search(re.escape(k)+r'\s+\S+\s+([\d.,]+)', b); return mm.group(1) if mm else '-'
    print(f"{ms:.3f} ms | {name} | SM {g('Compute (SM) Throughput')} | DRAM {g('DRAM Throughput')} | L2 {g('L2 Cache Throughput')}")
PY
echo "total $(( $(date +%s) - T_START )) s"
