#!/usr/bin/env python3
"""A PEFT LoRA adapter of random values for a model folder's config.json (numpy only), so that
`lora4j generate --adapter` can be timed on the random Mistral-7B folder of scripts/gpu/run.sh
the way a user runs it after fine-tuning. Every linear layer targeted (q, k, v, o, gate, up,
down), rank and alpha as given, fp32 tensors in PEFT's key names. The values are small and
random (B is not zero), so the adapter changes the text as a trained one would.

  python3 scripts/gpu/random-adapter.py MODEL_DIR OUT_DIR [--rank 16] [--alpha 16] [--seed 1]
"""
import argparse
import json
import os
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        c = json.load(f)
    d, inter = c["hidden_size"], c["intermediate_size"]
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    hd = c.get("head_dim") or d // heads
    shapes = {  # module: (in, out)
        "self_attn.q_proj": (d, heads * hd),
        "self_attn.k_proj": (d, kv * hd),
        "self_attn.v_proj": (d, kv * hd),
        "self_attn.o_proj": (heads * hd, d),
        "mlp.gate_proj": (d, inter),
        "mlp.up_proj": (d, inter),
        "mlp.down_proj": (inter, d),
    }
    rng = np.random.default_rng(a.seed)
    tensors = []
    for layer in range(c["num_hidden_layers"]):
        for m, (fan_in, fan_out) in shapes.items():
            key = f"base_model.model.model.layers.{layer}.{m}"
            A = (rng.standard_normal((a.rank, fan_in)) / np.sqrt(fan_in)).astype(np.float32)
            B = (rng.standard_normal((fan_out, a.rank)) * 0.01).astype(np.float32)
            tensors.append((key + ".lora_A.weight", A))
            tensors.append((key + ".lora_B.weight", B))
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, t in tensors:
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + t.nbytes]}
        off += t.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, t in tensors:
            f.write(np.ascontiguousarray(t).tobytes())
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": a.rank,
        "lora_alpha": a.alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "target_modules": [m.split(".")[1] for m in shapes],
        "base_model_name_or_path": None,
        "inference_mode": True,
    }
    with open(os.path.join(a.out, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"{len(tensors)} tensors, {off / 1e6:.1f} MB, rank {a.rank} -> {a.out}")


if __name__ == "__main__":
    main()
