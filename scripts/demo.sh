#!/usr/bin/env bash
# The main job: fine-tune the small Mistral the repository ships (examples/models/tiny-mistral,
# random weights, real Mistral vocabulary and chat template) on the shipped chat sample
# (examples/data/sample-chat.jsonl), on the GPU when there is one, else on the CPU; then compare
# the fine-tuned model with the base model on held-out data and on general text (the forgetting
# check, examples/data/general-text.jsonl), generate from it, and export it to GGUF for llama.cpp
# and Ollama.
#   scripts/demo.sh [extra train flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
LORA4J_NO_LLAMACPP=1 source scripts/ensure-tools.sh
echo "building lora4j (tests skipped; mvn -B -ntp verify runs them)..."
mvn -B -ntp -q -DskipTests -DskipNativeTests package
JAR=$(ls java/target/lora4j-*-cli.jar | head -1)
OUT=${OUT_DIR:-runs/demo}
rm -rf "$OUT"
java --enable-native-access=ALL-UNNAMED -jar "$JAR" train \
  --model examples/models/tiny-mistral \
  --data examples/data/sample-chat.jsonl \
  --output "$OUT" \
  --device auto \
  --rank 16 --alpha 32 --targets all-linear \
  --lr 5e-3 --schedule cosine --warmup-steps 5 \
  --batch-size 8 --epochs 8 --completions-only \
  --val-fraction 0.1 --eval-steps 100 --log-steps 20 --seed 1 \
  --forgetting-data examples/data/general-text.jsonl "$@"
echo
echo "generating with the fine-tuned adapter:"
java --enable-native-access=ALL-UNNAMED -jar "$JAR" generate \
  --model examples/models/tiny-mistral --adapter "$OUT/adapter" --device auto \
  --chat "What is the capital of France?" --max-new-tokens 16
echo
echo "exporting the fine-tuned model for llama.cpp and Ollama:"
java --enable-native-access=ALL-UNNAMED -jar "$JAR" export-gguf \
  --model examples/models/tiny-mistral --adapter "$OUT/adapter" \
  --output "$OUT/tiny-mistral-tuned-q8_0.gguf" --type q8_0
echo
echo "outputs: $OUT/adapter (PEFT adapter), $OUT/metrics.jsonl, $OUT/loss.png,"
echo "  $OUT/tiny-mistral-tuned-q8_0.gguf and its Ollama Modelfile (ollama create NAME -f FILE)"
