#!/usr/bin/env python3
"""How far Hugging Face transformers + PEFT itself lands from the float64 goldens when it trains in
the precisions people run it in: the three AdamW steps of each golden case
(java/src/test/resources/hf-reference/<case>: the bf16 checkpoint, adapter_init, the batch, lr
1e-2, clipping at 1.0), in float64 (the goldens' own precision: a check of this script), float32,
and bf16 weights with fp32 LoRA weights under bf16 autocast (the reference stack's setting,
benchmarks/reference/hf_peft_baseline.py), with eager and with SDPA attention. Prints, per case
and precision, the relative error of the loss and of the global gradient norm before each step
against the goldens' adamw.losses / adamw.grad_norms, and the worst first-step LoRA gradient
(relative Frobenius error per tensor), the quantities lora4j's GoldenTest bounds.

Usage: hf_golden_drift.py [FIXTURES_DIR]   (needs torch, transformers, peft, safetensors; a GPU
for the bf16 rows, else they run on the CPU)"""
import json
import os
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import MistralForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "..", "java", "src", "test", "resources", "hf-reference")


def run(case_dir, dtype, autocast, attn, device):
    ref = load_file(os.path.join(case_dir, "reference.safetensors"))
    model = MistralForCausalLM.from_pretrained(os.path.join(case_dir, "model"),
                                               torch_dtype=torch.bfloat16 if autocast else dtype,
                                               attn_implementation=attn).to(device)
    pm = PeftModel.from_pretrained(model, os.path.join(case_dir, "adapter_init"), is_trainable=True)
    lora = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
    with torch.no_grad():  # the LoRA weights in fp32 (bf16 autocast) or the run's precision
        for _, p in lora:
            p.data = p.data.to(torch.float32 if autocast else dtype)
    ids, att, labels = (ref[k].to(device) for k in ("input_ids", "attention_mask", "labels"))

    def loss_of():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
            return pm(input_ids=ids, attention_mask=att, labels=labels).loss

    worst, worst_name = 0.0, ""
    loss_of().backward()
    for n, p in lora:
        r = ref["grad." + n].double()
        e = float((p.grad.double().cpu() - r).norm() / r.norm())
        if e > worst:
            worst, worst_name = e, n
    pm.zero_grad()
    opt = torch.optim.AdamW([p for _, p in lora], lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01)
    losses, norms = [], []
    for _ in range(3):
        loss = loss_of()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_([p for _, p in lora], 1.0)))
        losses.append(float(loss))
        opt.step()
        opt.zero_grad()
    rl, rn = ref["adamw.losses"].tolist(), ref["adamw.grad_norms"].tolist()
    return {"loss_err": [abs(a - b) / abs(b) for a, b in zip(losses, rl)],
            "grad_norm_err": [abs(a - b) / abs(b) for a, b in zip(norms, rn)],
            "worst_lora_grad_err": worst, "worst_lora_grad": worst_name}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = [("float64 eager", torch.float64, False, "eager"),
                ("float32 eager", torch.float32, False, "eager"),
                ("bf16 autocast eager", None, True, "eager"),
                ("bf16 autocast sdpa", None, True, "sdpa")]
    print(f"{'case':<13} {'precision':<22} {'grad norm err, steps 1-3':<30} "
          f"{'loss err, steps 1-3':<30} worst LoRA grad")
    for case in ("tiny", "tiny-sliding", "hd128"):
        for name, dtype, autocast, attn in settings:
            torch.manual_seed(0)
            r = run(os.path.join(root, case), dtype, autocast, attn, device)
            r.update(case=case, precision=name, device=device)
            print(json.dumps(r), file=sys.stderr)
            fmt = lambda v: " ".join(f"{x:.2e}" for x in v)
            print(f"{case:<13} {name:<22} {fmt(r['grad_norm_err']):<30} {fmt(r['loss_err']):<30} "
                  f"{r['worst_lora_grad_err']:.2e}", flush=True)


if __name__ == "__main__":
    main()
