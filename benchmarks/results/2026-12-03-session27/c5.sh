set -u
# Twenty-seventh session, call 5 (branch attn-bwd-probe): the backward's probe program at 4 x 2048
# and 1 x 8192 (no library build: nvcc on the one file).
T_START=$(date +%s)
W=/tmp/w5; mkdir -p $W
nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr -Inative/src -Inative/include native/bench/attn_bwd_probe.cu -o $W/attn_bwd_probe > $W/probe-build.log 2>&1
echo "probe build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
for shape in "4 2048" "1 8192" "4 2048"; do timeout 60 $W/attn_bwd_probe $shape >> $W/probe.txt 2>&1; done
echo "probe at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz --exclude=attn_bwd_probe .
cat $W/sum.log $W/probe.txt
