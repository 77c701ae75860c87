#!/bin/bash
# The shipped demo's `lora4j train`, alternating the command-line jar with the vectorized LM-head
# softmax (after.jar, febf22f's code) and the same with the thread pool's bounded spin (spin.jar),
# six pairs in two rounds (the second round starting with spin.jar), build machine, nothing else running.
cd /work/main
run() { OUT=/tmp/cb/d-$1 && rm -rf $OUT && /usr/bin/time -f "wall %e s" java --enable-native-access=ALL-UNNAMED \
  -jar /tmp/cb/$1.jar train --model examples/models/tiny-mistral --data examples/data/sample-chat.jsonl \
  --output "$OUT" --device auto --rank 16 --alpha 32 --targets all-linear --lr 5e-3 --schedule cosine \
  --warmup-steps 5 --batch-size 8 --epochs 8 --completions-only --val-fraction 0.1 --eval-steps 100 \
  --log-steps 20 --seed 1 --forgetting-data examples/data/general-text.jsonl > /tmp/cb/sp-$1-$2.log 2>&1; }
for i in 1 2 3; do run after $i; run spin $i; done
for i in 4 5 6; do run spin $i; run after $i; done
