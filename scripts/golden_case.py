"""What the error models (bf16_error_model.py, bf16_grad_model.py) read from a golden case folder
(java/src/test/resources/hf-reference/<case>): its safetensors files as numpy arrays, and RoPE's
angle tables as Hugging Face forms them. Needs numpy only."""
import json
import struct

import numpy as np


def read_safetensors(path):
    """Every tensor of a safetensors file by name: float64 (from BF16, F32 or F64) or int64."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        a, b = v['data_offsets']
        raw = data[a:b]
        if v['dtype'] == 'BF16':
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif v['dtype'] == 'F32':
            arr = np.frombuffer(raw, np.float32)
        elif v['dtype'] == 'I64':
            arr = np.frombuffer(raw, np.int64)
        else:
            arr = np.frombuffer(raw, np.float64)
        arr = arr.reshape(v['shape'])
        out[k] = arr if v['dtype'] == 'I64' else arr.astype(np.float64)
    return out


def rope_tables(cfg, S):
    """cos and sin [S, head_dim / 2] in float64 of the angles Hugging Face computes in float32
    (inverse frequencies from rope_theta, top-level or in rope_parameters, then position x
    frequency)."""
    D = cfg['head_dim']
    theta = cfg.get('rope_parameters', {}).get('rope_theta', cfg.get('rope_theta'))
    inv = np.array([1.0 / np.float32(np.float64(np.float32(theta)) **
                                     np.float64(np.float32(2 * i) / np.float32(D)))
                    for i in range(D // 2)], np.float32)
    ang = (np.arange(S)[:, None].astype(np.float32) * inv[None, :]).astype(np.float32)
    return np.cos(ang).astype(np.float64), np.sin(ang).astype(np.float64)
