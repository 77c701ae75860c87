set -u
T_START=$(date +%s)
export OUT
# main 7927f95 (q/k/v input gradients as one GEMM, merged): the seven real-width cases
# (test_realwidth_cuda: Mistral-7B / NeMo-like widths against the CPU engine, every LoRA
# gradient, every recompute mode)
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/build.log
(cd native/build-gpu && LORA4J_REQUIRE_GPU=1 timeout 300 ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log /tmp/build.log $OUT/ 2>/dev/null
tail -2 /tmp/build.log
grep -a "FAIL\|rc=" /tmp/realwidth.log | head -20
grep -a "grad " /tmp/realwidth.log | sort -t= -k2 -g | tail -5 | cut -c1-160
tail -3 /tmp/realwidth.log
echo "total $(( $(date +%s) - T_START )) s"
