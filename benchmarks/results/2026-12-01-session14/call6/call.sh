set -u
export OUT
# the demo on the GPU with the q/k fp16 input (default) and with the e4m3 residue: the guard's skipped steps and their reasons
rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz
J=/tmp/lora4j-jre/bin/java
for v in f16 e4m3; do
  E=""; [ $v = e4m3 ] && E="LORA4J_QK_LO=e4m3"
  rm -rf /tmp/demo-$v
  env $E $J --enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.cachedir=/tmp/lora4j-javacpp -jar .device/lora4j-cli.jar train \
    --model examples/models/tiny-mistral --data examples/data/sample-chat.jsonl \
    --output /tmp/demo-$v --device cuda --rank 16 --alpha 32 --targets all-linear \
    --lr 5e-3 --schedule cosine --warmup-steps 5 --batch-size 8 --epochs 8 \
    --completions-only --val-fraction 0.1 --eval-steps 100 --log-steps 50 --seed 1 > $OUT/demo-$v.log 2>&1
  echo "$v rc=$?"
  cp /tmp/demo-$v/rejected.jsonl $OUT/rejected-$v.jsonl 2>/dev/null
  grep -ai "skip\|reject\|done:" $OUT/demo-$v.log | cut -c1-250 | head -12
done
