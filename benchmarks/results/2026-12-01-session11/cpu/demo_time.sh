#!/bin/bash
# $1: jar; prints the train command's summary lines
cd /work/main
OUT=/tmp/cb/demo-$(basename $1 .jar); rm -rf $OUT
/usr/bin/time -f "wall %e s" java --enable-native-access=ALL-UNNAMED -jar "$1" train \
  --model examples/models/tiny-mistral --data examples/data/sample-chat.jsonl --output "$OUT" \
  --device auto --rank 16 --alpha 32 --targets all-linear --lr 5e-3 --schedule cosine \
  --warmup-steps 5 --batch-size 8 --epochs 8 --completions-only --val-fraction 0.1 \
  --eval-steps 100 --log-steps 20 --seed 1 --forgetting-data examples/data/general-text.jsonl 2>&1 \
  | grep -E "^done|time per optimizer step|eval loss|final eval|wall"
