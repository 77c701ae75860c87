#!/bin/bash
# The shipped demo's `lora4j train` (scripts/demo.sh's arguments), alternating the command-line jar
# at b80c602 (pf.jar) and with layer 0 skipping the embedding's input gradient (l0.jar, built at 508cc5e), five pairs (the third ran beside a compile).
cd /work/main
for i in 1 2 3 4 5; do for v in pf l0; do
  OUT=/tmp/cb/d-$v && rm -rf $OUT && /usr/bin/time -f "wall %e s" java --enable-native-access=ALL-UNNAMED \
    -jar /tmp/cb/$v.jar train --model examples/models/tiny-mistral --data examples/data/sample-chat.jsonl \
    --output "$OUT" --device auto --rank 16 --alpha 32 --targets all-linear --lr 5e-3 --schedule cosine \
    --warmup-steps 5 --batch-size 8 --epochs 8 --completions-only --val-fraction 0.1 --eval-steps 100 \
    --log-steps 20 --seed 1 --forgetting-data examples/data/general-text.jsonl > /tmp/cb/l0ab-$v-$i.log 2>&1
  cp $OUT/adapter/adapter_model.safetensors /tmp/cb/adapter6-$v-$i.safetensors 2>/dev/null
done; done
