set -u
# Thirty-first session, call2: two orders, measured against main in one build tree by swapping
# attention_sm90.cu (.gpu/attention_sm90.var2.cu, rebuilt in place):
# - forward, persistent: items row after row, each row's query blocks longest first over its
#   heads (the K/V in flight one row's), instead of longest first over all rows;
# - backward: each block's query tiles from the last one down (the blocks in flight read the
#   same Q / dO tiles at about the same time), instead of from the block's first key up.
# test_ops_cuda's attention cases on the variant (LORA4J_REQUIRE_GPU=1); bench_ops
# attention_fwd / attention_bwd alternated M V M V; Nsight Compute's DRAM bytes, L2 hit rate and
# duration of every sm90 attention launch (4 x 2048 and 1 x 8192) for both.
T_START=$(date +%s)
W=/tmp/w2; mkdir -p $W
B=native/build-gpu
K=native/src/cuda/kernels/attention_sm90.cu
STEPS=build CUDA_ARCHS=90 timeout 300 bash scripts/gpu/run.sh > $W/build.log 2>&1; echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() { cp .gpu/attention_sm90.$1.cu $K; cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log; }
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 90 $B/bench_ops attention_fwd attention_bwd > $W/ops-$1.txt 2>&1
  echo "== $1" >> $W/bench.txt; grep -a "flash " $W/ops-$1.txt >> $W/bench.txt
}
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
prof() {
  LORA4J_OPS_SECONDS=0.01 LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 150 $NCU --clock-control none \
    -k regex:attn_.wd_sm90 --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,launch__grid_size \
    --csv --page raw $B/bench_ops attention_fwd attention_bwd > $W/ncu-$1.csv 2> $W/ncu-$1.err
  echo "ncu $1 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
bench M1
use var2 1
(cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda > $W/ops-attention-var2.log 2>&1; echo "ops attention var2 rc=$?" >> $W/sum.log)
bench V1
prof var2
use main 2; bench M2; prof main
use var2 2; bench V2
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
python3 - $W > $W/ncu-summary.txt 2>&1 <<'PY'
import csv, sys, statistics, collections
w = sys.argv[1]
for tag in ("main", "var2"):
    rows = list(csv.reader(open(f"{w}/ncu-{tag}.csv")))
    hdr = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if hdr is None:
        print(tag, "no table"); continue
    h = rows[hdr]; data = rows[hdr + 2:]
    ki, gi = h.index("Kernel Name"), h.index("launch__grid_size")
    ti, di, li = h.index("gpu__time_duration.sum"), h.index("dram__bytes_read.sum"), h.index("lts__t_sector_hit_rate.pct")
    units = rows[hdr + 1]
    groups = collections.defaultdict(list)
    for r in data:
        if len(r) <= max(ki, gi, ti, di, li): continue
        name = "fwd" if "attn_fwd" in r[ki] else "bwd"
        groups[(name, r[gi])].append((float(r[ti].replace(",", "")), float(r[di].replace(",", "")), float(r[li].replace(",", ""))))
    for (name, grid), v in sorted(groups.items()):
        print(f"{tag} {name} grid {grid}: n={len(v)} time {statistics.median(x[0] for x in v):.1f} {units[ti]} "
              f"dram {statistics.median(x[1] for x in v):.1f} {units[di]} L2 hit {statistics.median(x[2] for x in v):.1f}%")
PY
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "FAIL" $W/ops-attention-var2.log | head -5; tail -1 $W/ops-attention-var2.log
cut -c1-130 $W/bench.txt
cat $W/ncu-summary.txt
