set -u
# Prepared in the forty-sixth session, not yet run: first `git apply` next/s47-sample-batch.patch and
# next/s47-sample-default.patch (both from this folder), rebuild .device (mvn package, pack-java.sh).
# Call 2. The device draw's passes with their loads batched (order_boundary: 8 tokens a thread a
# round, the loads first; the other passes unrolled with the loads outside the tests), the device
# draw the default (LORA4J_DECODE_SAMPLE_DEVICE=0 the host's). Call1: 338 us a draw at top-p 0.9
# on flat logits, 64 at top-p 1 (ncu: IPC 1.2 on the one SM, 0.5 eligible warps a scheduler).
# 1) build this tree (sm_90, -lineinfo) and call1's sample.cu (this tree's with the batch patch taken back) as base
# 2) test_sample_cuda and test_decode_cuda with LORA4J_REQUIRE_GPU=1
# 3) bench_sample_cuda for both kernels; the new kernel's warp operations in SASS; ncu on one launch
# 4) `lora4j generate` sampled, device draw vs host draw vs greedy (gen.sh)
# 4b) lora4j train 1 x 512 with -Dlora4j.listenerThread=false and true (the listener thread)
# 4c) the data pass (train --steps 1 on 100,000 chat lines, CPU) with one encoding thread and with 16
# 5) the Java GPU tests and the demo on cuda:0 (run.sh java), in what is left of 540 s
T0=$(date +%s)
O=/tmp/o; mkdir -p $O  # every log, packed into $O/logs.tgz at the end (8 files come back at most)
S=benchmarks/results/2026-12-05-session46
B=native/build-s46
cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native \
  -DCMAKE_CUDA_FLAGS=-lineinfo > /tmp/cfg.log 2>&1 &&
  cmake --build $B --target lora4j_cuda test_sample_cuda test_decode_cuda bench_sample_cuda > /tmp/build.log 2>&1 ||
  { grep -a error /tmp/build.log | head; tail -5 /tmp/cfg.log; exit 1; }
rm -rf /tmp/base && mkdir /tmp/base && cp -r native cmake /tmp/base/ && rm -rf /tmp/base/native/build-s46 &&
  (cd /tmp/base && patch -R -p1 < $OLDPWD/$S/next/s47-sample-batch.patch > /dev/null) &&
  cmake -S /tmp/base/native -B /tmp/base/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLORA4J_MARCH=native -DCMAKE_CUDA_FLAGS=-lineinfo > /tmp/cfgb.log 2>&1 &&
  cmake --build /tmp/base/b --target bench_sample_cuda > /tmp/buildb.log 2>&1 || { grep -a error /tmp/buildb.log | head; exit 1; }
echo "builds at $(( $(date +%s) - T0 )) s"
for t in test_sample_cuda test_decode_cuda; do
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 300 ./$t > $O/$t.log 2>&1; echo "$t rc=$?")
  grep -a "FAIL\|PASS\|SKIP" $O/$t.log | cut -c1-140 | head -6
done
echo "tests at $(( $(date +%s) - T0 )) s"
for v in base new; do
  bin=$B/bench_sample_cuda; [ $v = base ] && bin=/tmp/base/b/bench_sample_cuda
  $bin 200 > $O/bench-$v.jsonl 2>&1; echo "bench $v rc=$?"
done
paste -d' ' <(sed 's/.*"logits": "\([a-z]*\)".*"t": \([0-9.]*\), "top_k": \([0-9]*\), "top_p": \([0-9.]*\).*"us": \([0-9.]*\).*/\1 t=\2 k=\3 p=\4 \5/;s/.*"op": "greedy", "logits": "\([a-z]*\)".*"us": \([0-9.]*\).*/\1 greedy \2/' $O/bench-base.jsonl) \
  <(sed 's/.*"us": \([0-9.]*\).*/\1/' $O/bench-new.jsonl) | awk '{print "base/new", $0}'
cuobjdump --dump-sass $B/CMakeFiles/lora4j_cuda_kernels.dir/src/cuda/kernels/sample.cu.o > /tmp/new.sass 2>&1
grep -o "MATCH[.A-Z0-9]*\|REDUX[.A-Z0-9]*\|WARPSYNC\|CALL[.A-Z_0-9]*" /tmp/new.sass | sort | uniq -c | head
for v in new; do
  bin=$B/bench_sample_cuda
  timeout 150 ncu --clock-control none --set full --import-source yes -k regex:sample_feed -c 1 -f -o /tmp/ncu-$v $bin 1 > /tmp/ncu-$v.log 2>&1; echo "ncu $v rc=$?"
  ncu -i /tmp/ncu-$v.ncu-rep --page details > $O/ncu-$v.txt 2>&1
  ncu -i /tmp/ncu-$v.ncu-rep --page source --csv --print-source sass > /tmp/src-$v.csv 2>&1
  ncu -i /tmp/ncu-$v.ncu-rep --page source --csv --print-source cuda,sass > /tmp/src2-$v.csv 2>&1
  gzip -c /tmp/src2-$v.csv > $O/ncu-src2-$v.csv.gz
  gzip -c /tmp/src-$v.csv > $O/ncu-src-$v.csv.gz
  grep -a -E "Duration|Warp Cycles Per Issued|Issued Warp|One or More Eligible|Stall|Compute \(SM\) Throughput" $O/ncu-$v.txt | head -12
done
echo "ncu at $(( $(date +%s) - T0 )) s"
tar -C /tmp -xJf .device/jre.tar.xz 2>/dev/null; J=/tmp/lora4j-jre/bin/java
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b \
  --tokenizer examples/models/tiny-mistral > /tmp/init.log 2>&1 || tail -5 /tmp/init.log
LORA4J_CUDA_LIBRARY=$B/liblora4j_cuda.so GEN_FORMS="default sample=TEMPERATURE=0.7 sample-host=TEMPERATURE=0.7,LORA4J_DECODE_SAMPLE_DEVICE=0" \
  GEN_ROUNDS=3 GEN_LONG=0 JAVA=$J bash scripts/gpu/gen.sh /tmp/gen > $O/gen.txt 2>&1; cat $O/gen.txt | tail -6
# 4b) the listener thread (forty-seventh session, CPU-built): lora4j train 1 x 512 (steps of ~40 ms) with the
#     built-in listeners on the training thread and on their own; predicted listeners 1.0-1.5 -> ~0.1 ms a step
for lt in false true; do
  CLI_JAVA_OPTS=-Dlora4j.listenerThread=$lt CLI_RUN_TIMEOUT_S=120 timeout 150 python3 benchmarks/cli_bench.py \
    $J .device/lora4j-cli.jar /tmp/lora4j-cli/m7b /tmp/clib-$lt 1x512 > $O/cli-1x512-listeners-$lt.jsonl 2>&1
  echo "listenerThread=$lt rc=$?"; grep -o '"tokens_per_s": [0-9.]*\|listeners [0-9.]*[^"]*' $O/cli-1x512-listeners-$lt.jsonl | cut -c1-200
done
# 4c) the data pass on this machine's cores (forty-seventh session): train --steps 1 on 100,000 chat lines, one
#     encoding thread against the pool (the build machine's two cores: 7.7 / 7.0 s; predicted here ~3 -> ~1.5 s)
python3 - <<'PY'
import json, random
random.seed(1)
src = [json.loads(l)["text"] for l in open("examples/data/general-text.jsonl")]
with open("/tmp/big-chat.jsonl", "w") as f:
    for i in range(100000):
        u = random.choice(src)[:400]; a = " ".join(random.choice(src) for _ in range(3))[:1500]
        f.write(json.dumps({"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]}) + "\n")
PY
for th in 1 16 1 16; do rm -rf /tmp/dp; /usr/bin/time -f "dataThreads=$th %e s" $J -Dlora4j.dataThreads=$th --enable-native-access=ALL-UNNAMED \
  -jar .device/lora4j-cli.jar train --model examples/models/tiny-mistral --data /tmp/big-chat.jsonl --output /tmp/dp --device cpu \
  --batch-size 8 --steps 1 --max-seq-length 512 --completions-only 2>&1 | grep dataThreads | tee -a $O/data-pass.txt; done
left=$(( 540 - ($(date +%s) - T0) ))
if [ $left -gt 60 ]; then
  OUT=$O STEPS=java timeout $left bash scripts/gpu/run.sh > /tmp/java-run.log 2>&1; echo "java rc=$? (limit $left s)"
  cat $O/java-summary.log 2>/dev/null | tail -4; tail -2 $O/demo-cuda.log 2>/dev/null
fi
(cd /tmp && tar czf $OUT/logs.tgz o gen build.log cfg.log ncu-new.log new.sass java-run.log 2>/dev/null)
echo "done at $(( $(date +%s) - T0 )) s"
