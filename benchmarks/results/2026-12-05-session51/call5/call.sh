# Fifty-first session, fifth call (fresh H100, the last ~4 minutes of the session's device time):
# the review mend 2479a3b (the conversions as one template each) through test_ops_cuda, the
# test cut off by its own 80 s timeout after its conversion checks.
T0=$(date +%s); cmake -S native -B /tmp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > /tmp/cfg.log 2>&1 && timeout 170 cmake --build /tmp/b --target test_ops_cuda -j 16 > /tmp/bld.log 2>&1; echo "build rc=$? at $(( $(date +%s) - T0 )) s"; cd /tmp/b && LORA4J_REQUIRE_GPU=1 timeout 80 ./test_ops_cuda > /tmp/t.log 2>&1; echo "test rc=$? at $(( $(date +%s) - T0 )) s"; grep -c "convert.*PASS" /tmp/t.log; grep -a "FAIL" /tmp/t.log | head -5; tail -n1 /tmp/t.log; nvidia-smi --query-gpu=name --format=csv,noheader
