set -u
# Thirty-first session, call5: where the forward's 7% to cuDNN at 4 x 2048 goes. Nsight Compute
# times our persistent forward at cuDNN's speed in isolation (263 against 260 us), the op
# benchmark at 0.28 against 0.26 ms launch after launch. gap.py runs ours (through the bench
# library, ctypes) and cuDNN (torch SDPA) in one process, each sustained for 4 s, then 60
# launches under torch.profiler (each kernel's duration and the gap to the next); nvidia-smi
# logs the SM clock, power and clock-event reasons every 20 ms beside it.
T_START=$(date +%s)
D=benchmarks/results/2026-12-03-session31/call5
W=/tmp/w5; mkdir -p $W
B=native/build-gpu
STEPS=build CUDA_ARCHS=90 timeout 300 bash scripts/gpu/run.sh > $W/build.log 2>&1; echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
Q=timestamp,clocks.sm,power.draw,clocks_event_reasons.active,temperature.gpu
nvidia-smi --query-gpu=$Q --format=csv,noheader,nounits -c 1 > /dev/null 2>&1 || Q=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active,temperature.gpu
nvidia-smi --query-gpu=$Q --format=csv,noheader,nounits -lms 20 > $W/smi.csv 2> $W/smi.err &
SMI=$!
LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 200 python3 $D/gap.py $B/liblora4j_bench.so $W > $W/gap.log 2>&1; echo "gap rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
kill $SMI
python3 - $W > $W/summary.txt 2>&1 <<'PY'
import sys, statistics, datetime
w = sys.argv[1]
ph = {}
for l in open(f"{w}/gap.log"):
    p = l.split()
    if len(p) > 5 and p[0] == "PHASE" and p[2] == "sustained":
        ph[p[1]] = (float(p[3]), float(p[4]))
rows = []
for l in open(f"{w}/smi.csv"):
    p = [x.strip() for x in l.split(",")]
    try:
        t = datetime.datetime.strptime(p[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
        rows.append((t, float(p[1]), float(p[2]), p[3], p[4]))
    except Exception:
        pass
for name, (t0, t1) in ph.items():
    r = [x for x in rows if t0 + 0.5 <= x[0] <= t1]
    if not r:
        print(name, "no smi samples"); continue
    reasons = {}
    for x in r: reasons[x[3]] = reasons.get(x[3], 0) + 1
    print(f"{name}: {len(r)} samples, SM clock median {statistics.median(x[1] for x in r):.0f} MHz "
          f"(min {min(x[1] for x in r):.0f}), power median {statistics.median(x[2] for x in r):.0f} W, "
          f"reasons {reasons}, temp {r[-1][4]}")
PY
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log; head -3 $W/smi.err
grep PHASE $W/gap.log | cut -c1-400; tail -3 $W/gap.log | grep -v PHASE
cat $W/summary.txt
