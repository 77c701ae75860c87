set -u
export OUT
# the demo on the GPU under three q/k input precisions and two seeds: skipped steps, and the gradient norms of steps 90-104
rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz
J=/tmp/lora4j-jre/bin/java
for seed in 1 2; do
for v in f16 e4m3 bf16; do
  E=""; [ $v != f16 ] && E="LORA4J_QK_LO=$v"
  rm -rf /tmp/demo-$v
  env $E $J --enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp -jar .device/lora4j-cli.jar train \
    --model examples/models/tiny-mistral --data examples/data/sample-chat.jsonl \
    --output /tmp/demo-$v --device cuda --rank 16 --alpha 32 --targets all-linear \
    --lr 5e-3 --schedule cosine --warmup-steps 5 --batch-size 8 --epochs 8 \
    --completions-only --val-fraction 0.1 --eval-steps 100 --log-steps 50 --seed $seed > $OUT/demo-$v-seed$seed.log 2>&1
  cp /tmp/demo-$v/metrics.jsonl $OUT/metrics-$v-seed$seed.jsonl
  echo "seed $seed $v: $(grep -a 'done:' $OUT/demo-$v-seed$seed.log | cut -c1-120)"
  grep -a "skipped:" $OUT/demo-$v-seed$seed.log | cut -c1-110
done
done
