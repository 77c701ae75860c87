set -u
export OUT
# clocks and power: the frozen GEMMs in bursts and sustained, then the whole step, nvidia-smi sampling throughout
STEPS="build" CUDA_ARCHS=90 timeout 120 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
B=native/build-gpu
F=clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active
nvidia-smi --query-gpu=timestamp,$F --format=csv,noheader -lms 100 > /tmp/smi.csv 2>&1 &
SMI=$!
mark() { echo "$(date +%s.%N) $1" >> /tmp/marks.txt; }
sleep 2; mark idle-end
mark gemms; timeout 200 $B/bench_gemm_cuda --data model --sustain 20 > /tmp/gemms.jsonl 2>&1; mark gemms-end
sleep 3
mark step; LORA4J_PHASE_TIMES=/tmp/phases.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 150 $B/bench_cuda > /tmp/bench_phases.jsonl 2>&1; mark step-end
sleep 2
mark step2; LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 150 $B/bench_cuda > /tmp/bench2.jsonl 2>&1; mark step2-end
kill $SMI
python3 benchmarks/phases.py /tmp/bench_phases.jsonl /tmp/phases.jsonl > /tmp/phases.txt 2>&1
cp /tmp/run.log /tmp/smi.csv /tmp/marks.txt /tmp/gemms.jsonl /tmp/bench_phases.jsonl /tmp/phases.jsonl /tmp/phases.txt /tmp/bench2.jsonl $OUT/ 2>/dev/null
head -3 /tmp/smi.csv
grep -a "rc=" /tmp/run.log
grep -a '^# ' /tmp/gemms.jsonl
grep train_step /tmp/bench_phases.jsonl /tmp/bench2.jsonl
head -45 /tmp/phases.txt
python3 - <<'PY'
import datetime, statistics
marks=[l.split() for l in open('/tmp/marks.txt')]
rows=[]
for l in open('/tmp/smi.csv'):
    p=[x.strip() for x in l.split(',')]
    try:
        t=datetime.datetime.strptime(p[0],'%Y/%m/%d %H:%M:%S.%f').timestamp()
        rows.append((t,float(p[1].split()[0]),float(p[3].split()[0]),p[4],p[5] if len(p)>5 else ''))
    except Exception: pass
for i in range(0,len(marks)-1):
    a,na=float(marks[i][0]),marks[i][1]; b=float(marks[i+1][0])
    if na.endswith('-end'): continue
    w=[r for r in rows if a<=r[0]<b]
    busy=[r for r in w if r[2]>250]
    if not w: continue
    sel=busy or w
    reasons={}
    for r in sel: reasons[r[4]]=reasons.get(r[4],0)+1
    print("%-6s samples %4d busy %4d  sm MHz median %6.0f min %6.0f  power W median %5.0f max %5.0f  temp %s  reasons %s"%(na,len(w),len(busy),statistics.median(r[1] for r in sel),min(r[1] for r in sel),statistics.median(r[2] for r in sel),max(r[2] for r in sel),sel[-1][3],reasons))
PY
