set -u
# Thirty-second session, call 3: why call2's L (fewer instructions) ran slower, the changes apart.
# Alternated in one tree: M = main, S = attn-bwd-stmatrix (dS^T by stmatrix alone), V = attn-bwd-lds
# with the full-tile / masked branch outside the four-at-a-time lse / delta reads (call2's L had it
# inside), VF = V plus the softmax scale folded into lse (attn-bwd-scale-fold). Each build's SASS
# instruction count of the hd128 backward (unbounded). A variant faster than M at both shapes by
# more than 0.5% is rebuilt and gets every ctest test (LORA4J_REQUIRE_GPU=1) and memcheck on the
# attention cases.
# Before the call: .gpu/attention_sm90.{main,stm,v2,v2f}.cu (carry .gpu).
T_START=$(date +%s)
W=/tmp/w3; mkdir -p $W
B=native/build-gpu
K=native/src/cuda/kernels/attention_sm90.cu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
sass() {
  o=$(find $B -name 'attention_sm90.cu.o' | head -1)
  cuobjdump -sass "$o" > $W/sass-$1.txt 2>&1
  python3 - "$W/sass-$1.txt" "$1" >> $W/sass-count.txt <<'PY'
import re, sys
t = open(sys.argv[1]).read().split("Function : ")
for f in t[1:]:
    name = f.split("\n", 1)[0]
    if "attn_bwd_sm90_kernelILi128ELb0" not in name: continue
    ins = re.findall(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)", f)
    ops = {}
    for i in ins: ops[i.split(".")[0]] = ops.get(i.split(".")[0], 0) + 1
    top = sorted(ops.items(), key=lambda x: -x[1])[:14]
    print(sys.argv[2], "hd128 bwd SASS instructions", len(ins), " ".join("%s:%d" % x for x in top))
PY
}
use() { cp .gpu/attention_sm90.$1.cu $K; cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log; }
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 90 $B/bench_ops attention_bwd > $W/ops-$1.txt 2>&1
  echo "== $1" >> $W/bench.txt; grep -a "flash " $W/ops-$1.txt >> $W/bench.txt
}
for r in 1 2; do
  for v in main stm v2 v2f; do use $v $r; [ $r = 1 ] && sass $v; bench $v-$r; done
done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
python3 - $W/bench.txt > $W/pick.txt <<'PY'
import sys, statistics
cur, t = None, {}
for line in open(sys.argv[1]):
    if line.startswith("== "): cur = line[3:].strip().rsplit("-", 1)[0]; continue
    f = line.split(); ms = float(f[f.index("cuda:0") + 1]); shape = f[1] + f[2]
    t.setdefault(cur, {}).setdefault(shape, []).append(ms)
m = {v: {s: statistics.mean(x) for s, x in d.items()} for v, d in t.items()}
best, gain = "none", 0.0
for v in m:
    if v == "main": continue
    r = [m[v][s] / m["main"][s] for s in m["main"]]
    print(v, " ".join("%s %.4f" % (s, m[v][s]) for s in m[v]), "ratio to main", " ".join("%.4f" % x for x in r))
    if max(r) < 0.995 and 1 - max(r) > gain: best, gain = v, 1 - max(r)
print("pick", best)
PY
PICK=$(awk '/^pick/{print $2}' $W/pick.txt)
if [ "$PICK" != none ]; then
  use $PICK t
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 250 ctest -V --timeout 250) > $W/ctest-$PICK.log 2>&1
  echo "ctest $PICK rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-attention-memcheck.log 2>&1
  echo "memcheck rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
fi
tar -C $W -czf $OUT/logs.tgz --exclude='sass-*.txt' . ; tar -C $W -czf $OUT/sass.tgz sass-main.txt sass-stm.txt sass-v2.txt sass-v2f.txt 2>/dev/null
cat $W/sum.log
cat $W/sass-count.txt | cut -c1-300
cat $W/pick.txt
grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-*.log 2>/dev/null | head -8
grep -a "\[golden\] hd128 lora grads" $W/ctest-*.log 2>/dev/null | head -4
grep -a "ERROR SUMMARY" $W/cudasan-*.log 2>/dev/null | head
cut -c1-120 $W/bench.txt
