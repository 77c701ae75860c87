set -u
# Call 2 after s45c1.sh (see its comment: the four patches applied, the jar packed): the
# timing. `lora4j generate`, random 7B folder, 512 tokens, two runs a form and the long prompt
# once: greedy without an adapter (the norm fold on, then LORA4J_DECODE_NORM_FOLD=0), with the
# rank-16 adapter (and with each of the forty-third session's switches off), sampled
# (--temperature 0.7 --top-p 0.9) on the device and with LORA4J_DECODE_SAMPLE_DEVICE=0. gen.sh
# prints the engine's ms a token and the whole loop's ("all told").
STEPS="gen" GEN_ROUNDS=2 \
  GEN_FORMS="default nofold=LORA4J_DECODE_NORM_FOLD=0 lora=ADAPTER=/tmp/lora4j-cli/a7b lora-notail=ADAPTER=/tmp/lora4j-cli/a7b,LORA4J_DECODE_LORA_TAIL=0 lora-nonorma=ADAPTER=/tmp/lora4j-cli/a7b,LORA4J_DECODE_NORM_A=0 sample=TEMPERATURE=0.7 sample-host=TEMPERATURE=0.7,LORA4J_DECODE_SAMPLE_DEVICE=0" \
  bash scripts/gpu/run.sh > /tmp/s45-gen.log 2>&1
echo "run.sh rc=$?"
cp /tmp/s45-gen.log $OUT/run.log
grep -aE -A19 '^form ' /tmp/s45-gen.log
