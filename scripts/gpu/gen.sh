#!/usr/bin/env bash
# `lora4j generate` timed as benchmarks/RESULTS.md's decode figures are (forty-first session on):
# the packed command line on a random Mistral-7B folder, 512 new tokens greedy after a 13-token
# prompt and after a ~2,750-token one, several forms of our own path in turn in one call (run
# order: round by round, each form once a round), the figure being generate's own "ms a token"
# over the decode steps. Used by scripts/gpu/run.sh's "gen" step; alone:
#   bash scripts/gpu/gen.sh OUTDIR
# GEN_FORMS   space-separated forms, each NAME or NAME=VAR=VALUE[,VAR=VALUE...] (the environment
#             of its runs), e.g. "default pdl0=LORA4J_DECODE_PDL=0" (default: "default");
#             ADAPTER=DIR among them passes --adapter DIR (a PEFT adapter, e.g. one made by
#             scripts/gpu/random-adapter.py), as a user generates after fine-tuning;
#             TEMPERATURE=T samples (--temperature T --top-p 0.9) instead of greedy decoding
# GEN_ROUNDS  runs of each form at the short prompt (3); GEN_LONG: at the long one (1)
# GEN_TOKENS  new tokens (512); GEN_DEVICE (cuda); GEN_MODEL, the model folder
#             (/tmp/lora4j-cli/m7b, made by run.sh's cli_model); GEN_JAR (.device/lora4j-cli.jar);
#             JAVA (java)
# Prints a line a form and prompt (the ms a token of each run: the engine's, over its decode steps,
# and all told, generate's whole loop with sampling and output over its tokens; "same" where every
# run's text equals the first run's at that prompt of the first form with the same adapter and
# temperature, as it must unless a form changes the sums)
# and writes each run's stdout / stderr under OUTDIR.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUTDIR=${1:?usage: gen.sh OUTDIR}
mkdir -p "$OUTDIR"
JAVA=${JAVA:-java}
JAR=${GEN_JAR:-$ROOT/.device/lora4j-cli.jar}
MODEL=${GEN_MODEL:-/tmp/lora4j-cli/m7b}
FORMS=${GEN_FORMS:-default}
SHORT="Write a long story about a lighthouse keeper."
LONG=$(for i in $(seq 1 150); do
  printf 'The keeper climbed the stairs at dusk and lit the lamp number %d. ' "$i"; done)
status=0
opt_of() {  # VAR form: the form's VAR value, or nothing
  local e
  [[ "$2" == *=* ]] || return 0
  for e in $(echo "${2#*=}" | tr , ' '); do [[ "$e" == "$1"=* ]] && echo "${e#"$1"=}"; done
}
run() {  # form prompt-name prompt round
  local name=${1%%=*} envs="" n a t adapter=() temp=(--temperature 0)
  [[ "$1" == *=* ]] && envs=${1#*=}
  a=$(opt_of ADAPTER "$1")
  [ -n "$a" ] && adapter=(--adapter "$a")
  t=$(opt_of TEMPERATURE "$1")
  [ -n "$t" ] && temp=(--temperature "$t" --top-p 0.9)
  n="$OUTDIR/$name-$2-$4"
  env ${envs//,/ } timeout 300 "$JAVA" --enable-native-access=ALL-UNNAMED \
    -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp -jar "$JAR" generate --model "$MODEL" "${adapter[@]}" \
    --device "${GEN_DEVICE:-cuda}" --prompt "$3" --max-new-tokens "${GEN_TOKENS:-512}" \
    "${temp[@]}" --seed 1 > "$n.out" 2> "$n.err" || { echo "$name $2 run $4 failed:"; tail -3 "$n.err"; status=1; }
}
for r in $(seq 1 "${GEN_ROUNDS:-3}"); do for f in $FORMS; do run "$f" short "$SHORT" "$r"; done; done
for r in $(seq 1 "${GEN_LONG:-1}"); do for f in $FORMS; do run "$f" long "$LONG" "$r"; done; done
printf '%-12s %-6s %-34s %-34s %s\n' form prompt "ms a token, each run" "all told" text
for p in short long; do
  declare -A first=()
  for f in $FORMS; do
    name=${f%%=*} times="" told="" same=same a="-$(opt_of ADAPTER "$f")-$(opt_of TEMPERATURE "$f")"
    for e in "$OUTDIR/$name-$p-"*.err; do
      [ -f "$e" ] || continue
      t=$(grep -o '[0-9.]* ms a token' "$e" | tail -1 | cut -d' ' -f1)
      times="$times ${t:-failed}"
      t=$(grep -o '[0-9]* tokens\? in [0-9.]* ms all told' "$e" | tail -1 | awk '{printf "%.2f", $4 / $1}')
      told="$told ${t:-failed}"
      o=${e%.err}.out
      [ -z "${first[$a]:-}" ] && first[$a]=$o
      cmp -s "${first[$a]}" "$o" || same=DIFFERS
    done
    [ -n "$times" ] && printf '%-12s %-6s %-34s %-34s %s\n' "$name" "$p" "$times" "$told" "$same"
  done
done
exit $status
