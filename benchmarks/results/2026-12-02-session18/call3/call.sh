set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-480}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Eighteenth session, call3: every LoRA-path default of the CUDA engine paired against its switch
# with a trained (PEFT-initialized) adapter. Each was chosen on A/Bs whose benchmark adapter was
# all zeros (bench_cuda before 1e39443). 32 layers, 4 x 2048 without recompute, 24 pairs each;
# then the two folds with attention recompute offloaded while time is left.
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/pairs.log
pairrun() {  # settings assignments
  [ $(left) -lt 70 ] && { echo "main $2 ($1): skipped, $(left) s left" >> /tmp/pairs.log; return; }
  LORA4J_BENCH_PAIRS=24 LORA4J_BENCH_AB="$2" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=$1 timeout $(( $(left) - 10 )) native/build-gpu/bench_cuda 2>&1 | sed "s/^/main /" >> /tmp/pairs.log
  echo "  at $(( $(date +%s) - T_START )) s" >> /tmp/pairs.log
}
for sw in LORA4J_LORA_FOLD LORA4J_QKV_DX_FOLD LORA4J_LORA_DY_PAIR LORA4J_LORA_DX_SWIGLU LORA4J_LORA_GROUPS LORA4J_LORA_B_KERNEL LORA4J_LORA_GROUP_DA; do
  pairrun 4x2048-none $sw=0
done
for sw in LORA4J_LORA_FOLD LORA4J_QKV_DX_FOLD; do
  pairrun 4x2048-attention $sw=0
done
cp /tmp/pairs.log /tmp/build.log $OUT/ 2>/dev/null
cut -c1-240 /tmp/pairs.log
python3 benchmarks/ab.py /tmp/pairs.log
echo "total $(( $(date +%s) - T_START )) s"
