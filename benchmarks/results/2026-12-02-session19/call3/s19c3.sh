set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-470}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# The nineteenth session's third call: how often the golden hd128 AdamW check comes near its bound
# now that right-padded batches take the Hopper kernels (their dQ atomics make each run differ;
# the sixth session's branch once gave 3.38e-2 of 3e-2 on the third step). test_engine_cuda
# repeated (its golden runs the default and LORA4J_RIGHT_PAD_UNMASKED=0 on the same batch), then
# the Java GoldenTest on cuda:0 repeated (needs .device/ from scripts/gpu/pack-java.sh).
STEPS="build" CUDA_ARCHS=90 timeout 150 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" | tee -a /tmp/run.log
: > /tmp/native-golden.log
i=0
while [ $(left) -gt 230 ] && [ $i -lt 40 ]; do
  i=$((i+1))
  (cd native/build-gpu && LORA4J_REQUIRE_GPU=1 timeout 30 ./test_engine_cuda 2>&1) | grep -a "\[golden\] hd128" | grep -a "adamw grad norm, worst step\|lora grads (max over tensors), recompute none\|adamw 3 steps losses" | sed "s/^/run $i /" >> /tmp/native-golden.log
done
echo "native runs: $i at $(( $(date +%s) - T_START )) s"
rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz
J=/tmp/lora4j-jre/bin/java
: > /tmp/java-golden.log
j=0
while [ $(left) -gt 25 ] && [ $j -lt 15 ]; do
  j=$((j+1))
  (cd java && timeout $(( $(left) - 5 )) $J --enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp -Dlora4j.test.device=cuda \
     -cp ../.device/test-classes.jar:../.device/lora4j-cli.jar:../.device/junit-console.jar \
     org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary \
     --select-class dev.lora4j.golden.GoldenTest 2>&1) > /tmp/java-$j.log
  grep -a "^golden hd128" /tmp/java-$j.log | grep -a "grad_norm\|worst gradient\|lora grad" | sed "s/^/run $j /" >> /tmp/java-golden.log
  grep -a "tests successful\|tests failed" /tmp/java-$j.log | sed "s/^/run $j /" >> /tmp/java-golden.log
done
echo "java runs: $j at $(( $(date +%s) - T_START )) s"
cp /tmp/run.log /tmp/native-golden.log /tmp/java-golden.log /tmp/java-1.log $OUT/ 2>/dev/null
python3 - <<'PY'
import re, statistics as st
def summ(path, key):
    vals = {}
    for line in open(path, errors="replace"):
        m = re.search(r"err=([0-9.e+-]+)", line) or re.search(r"\s([0-9.]+e[-+][0-9]+) \(<=", line)
        if not m: continue
        for k in key:
            if k in line:
                vals.setdefault(k, []).append(float(m.group(1)))
    for k, v in vals.items():
        v.sort()
        print(f"  {k[:70]:70s} n={len(v):2d} min {v[0]:.3e} median {st.median(v):.3e} max {v[-1]:.3e} over 3e-2: {sum(x > 3e-2 for x in v)}")
print("native golden (test_engine_cuda), hd128:")
summ("/tmp/native-golden.log", ["hd128 adamw grad norm, worst step", "(LORA4J_RIGHT_PAD_UNMASKED=0) adamw grad norm, worst step",
     "hd128 lora grads (max over tensors), recompute none", "(LORA4J_RIGHT_PAD_UNMASKED=0) lora grads (max over tensors), recompute none"])
print("java GoldenTest on cuda:0, hd128:")
keys = sorted({re.sub(r"^run \d+ golden hd128\s+", "", l).split("  ")[0].strip() for l in open("/tmp/java-golden.log", errors="replace") if "golden hd128" in l and "(<=" in l})
summ("/tmp/java-golden.log", keys)
PY
grep -a "tests failed" /tmp/java-golden.log | sort | uniq -c
echo "total $(( $(date +%s) - T_START )) s"
