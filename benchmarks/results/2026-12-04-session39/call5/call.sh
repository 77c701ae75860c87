set -u
# Thirty-ninth session, call 5: decoding speed on Mistral-7B shapes, measured before any change to
# it (`lora4j generate` now prints the engine's time of the prompt's pass and of each decode step).
# The random 7B folder with the tiny model's tokenizer (same 32000-token vocabulary); sampling at
# temperature 1 so that the end-of-sequence token (1 in 32000 a step) seldom ends a run early.
# Floor of a decode step at batch 1: every weight read once, 14.5 GB at the card's ~4.3 TB/s
# copy rate, ~3.4 ms (~295 tokens/s), plus the KV cache (small at these lengths).
T_START=$(date +%s)
W=/tmp/w5; mkdir -p $W
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
JO="--enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp"
$J $JO -jar .device/lora4j-cli.jar init-model --config benchmarks/reference/mistral-7b-bench-config.json \
  --output /tmp/m7b --tokenizer examples/models/tiny-mistral > $W/init.log 2>&1
echo "init rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
P1="Write a long story about a lighthouse keeper."
P2=$(python3 -c "print(' '.join(['The quick brown fox jumps over the lazy dog.'] * 100))")
run() {  # name, max new tokens, prompt
  timeout 120 $J $JO -jar .device/lora4j-cli.jar generate --model /tmp/m7b --device cuda \
    --prompt "$3" --max-new-tokens $2 --temperature 1.0 --seed 1 > $W/$1.out 2> $W/$1.err
  echo "$1 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
}
run short-256 256 "$P1"
run long-prompt-256 256 "$P2"
run short-256-again 256 "$P1"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv > $W/smi.txt 2>&1
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
for f in $W/*.err; do echo "== $(basename $f)"; tail -3 $f | cut -c1-220; done
echo "total $(( $(date +%s) - T_START )) s"
