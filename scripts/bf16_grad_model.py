"""bf16 gradient-error model of the Mistral training step against the float64 golden reference.

The forward-only scripts/bf16_error_model.py tells where the logits' error comes from; this one
asks the same of the LoRA gradients, which the numerics contract bounds (hd128: worst LoRA
gradient within 3e-2 of the float64 reference, test_engine_cuda's golden). It runs a golden case
in float64 with torch autograd, rounding tensors at the points where the CUDA engine keeps them in
16 bits: in the forward (the value used downstream) and in the backward (the gradient that flows
on). Each rounding is a straight-through function: forward rounds x, backward rounds the incoming
gradient (either side may be exact). It prints the worst relative error over the LoRA gradients
(||g - ref|| / ||ref||, as test_engine_cuda) and the tensor it is on, for:
  engine   the engine's roundings (bf16 activations with the q/k path in fp32 -> fp16 after RoPE
           (the q/k GEMMs' input exact here; the engine gives them fp16, 11 bits),
           bf16 P and dS in the attention's products, bf16 dO / dq / dk / dv / dgate / dup,
           fp32 residual stream and its gradient)
  dres     the engine's with the residual stream's gradient rounded to bf16 at each add
  +res     the engine's with the residual stream rounded to bf16 after each add (forward)
  +res2    as +res, with o's and down's adds rounded twice (the residual plus the LoRA term, then
           plus the frozen product: lora_b_residual before the GEMM, as the engine forms them)
  +dres    +res and dres, as Hugging Face's bf16 model and autograd keep them
  hf-bf16  every activation and gradient in bf16 (Hugging Face with the model in bf16)
Run from a case folder:
    cd java/src/test/resources/hf-reference/hd128 && python3 ../../../../../../scripts/bf16_grad_model.py
--layers=N (any number of times) also runs the case's layers repeated to depth N, each set
against the unrounded run at that depth (the golden cases have two layers, Mistral 32).
Needs numpy and torch (CPU is enough; on Debian `apt-get install python3-torch`, for
/usr/bin/python3). `exact` (no rounding) checks the model itself: ~1e-6 on hd128.
"""
import glob, json, os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_case import read_safetensors, rope_tables  # noqa: E402

torch.set_default_dtype(torch.float64)


def st(path):
    return {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(path).items()}


W = {}
for f in glob.glob('model/*.safetensors'): W.update(st(f))
AD = st('adapter_init/adapter_model.safetensors')
R = st('reference.safetensors'); ref = json.load(open('reference.json'))
cfg = ref['config']
acfg = json.load(open('adapter_init/adapter_config.json'))
scale = acfg['lora_alpha'] / acfg['r']
H = cfg['num_attention_heads']; KH = cfg['num_key_value_heads']; D = cfg['head_dim']
eps = cfg.get('rms_norm_eps', 1e-5)
ids = R['input_ids']; mask = R['attention_mask']; labels = R['labels']; B, S = ids.shape
cos_, sin_ = rope_tables(cfg, S)
cos = torch.from_numpy(cos_)[None, :, None, :]
sin = torch.from_numpy(sin_)[None, :, None, :]


def to16(x, kind):
    if kind is None: return x
    dt = torch.bfloat16 if kind == 'bf16' else torch.float16
    return x.to(torch.float32).to(dt).to(torch.float64)


class Rnd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fwd, bwd):
        ctx.bwd = bwd
        return to16(x, fwd)

    @staticmethod
    def backward(ctx, g):
        return to16(g, ctx.bwd), None, None


NL = cfg['num_hidden_layers']


def lkey(k, l):
    return k.replace('layers.%d.' % (l % NL), 'layers.%d.' % l, 1)


def run(cfgset, layers=NL):
    """cfgset: dict point -> (forward rounding, backward rounding); layers beyond the case's
    repeat its layers (layer l has layer l mod NL's weights and adapter). Returns the loss and
    the LoRA gradients by name."""
    def r(name, x):
        f, b = cfgset.get(name, (None, None))
        return x if f is None and b is None else Rnd.apply(x, f, b)
    params = {}
    for l in range(layers):
        for k, v in AD.items():
            if 'layers.%d.' % (l % NL) in k: params[lkey(k, l)] = v.clone().requires_grad_(True)

    def lin_parts(x, l, mod, proj):
        w = W['model.layers.%d.%s.%s.weight' % (l % NL, mod, proj)]
        key = 'base_model.model.model.layers.%d.%s.%s.lora_%%s.weight' % (l, mod, proj)
        if key % 'A' not in params: return x @ w.T, torch.zeros(())
        xa = r('xa', x @ params[key % 'A'].T)
        return x @ w.T, scale * (xa @ params[key % 'B'].T)

    def lin(x, l, mod, proj):
        w = W['model.layers.%d.%s.%s.weight' % (l % NL, mod, proj)]
        key = 'base_model.model.model.layers.%d.%s.%s.lora_%%s.weight' % (l, mod, proj)
        y = x @ w.T
        if key % 'A' in params:
            xa = r('xa', x @ params[key % 'A'].T)
            y = y + scale * (xa @ params[key % 'B'].T)
        return y

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w

    def rope(x):
        a = x[..., :D // 2]; b = x[..., D // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)

    x = W['model.embed_tokens.weight'][ids]
    causal = torch.tril(torch.ones(S, S, dtype=torch.bool))
    if cfg.get('sliding_window'):  # Hugging Face's rule: query i sees keys j with i - W < j <= i
        i_ = torch.arange(S)[:, None]; j_ = torch.arange(S)[None, :]
        causal = causal & (i_ - j_ < cfg['sliding_window'])
    for l in range(layers):
        p = 'model.layers.%d.' % (l % NL)
        xn = rms(x, W[p + 'input_layernorm.weight'])
        q = r('q', lin(xn, l, 'self_attn', 'q_proj')).reshape(B, S, H, D)
        k = r('k', lin(xn, l, 'self_attn', 'k_proj')).reshape(B, S, KH, D)
        v = r('v', lin(r('xn1', xn), l, 'self_attn', 'v_proj')).reshape(B, S, KH, D)
        q = r('rope', rope(q)); k = r('rope', rope(k))
        outs = []
        for hh in range(H):
            kh = hh // (H // KH)
            s = r('s', torch.einsum('bqd,bkd->bqk', q[:, :, hh], k[:, :, kh]) / np.sqrt(D))
            m = causal[None] & (mask[:, None, :] > 0)
            s = s.masked_fill(~m, float('-inf'))
            mx = s.max(-1, keepdim=True).values.detach()
            mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
            e = torch.exp(s - mx)
            lsum = e.sum(-1, keepdim=True)
            lsum = torch.where(lsum > 0, lsum, torch.ones_like(lsum))
            outs.append(torch.einsum('bqk,bkd->bqd', r('P', e), v[:, :, kh]) / lsum)
        att = r('att', torch.stack(outs, 2).reshape(B, S, H * D))
        if 'res2' in cfgset:
            b_, l_ = lin_parts(att, l, 'self_attn', 'o_proj'); x = r('res', r('res', x + l_) + b_)
        else:
            x = r('res', x + lin(att, l, 'self_attn', 'o_proj'))
        xn2 = r('xn2', rms(x, W[p + 'post_attention_layernorm.weight']))
        g = r('gate', lin(xn2, l, 'mlp', 'gate_proj')); u = r('up', lin(xn2, l, 'mlp', 'up_proj'))
        hmid = r('h', g / (1 + torch.exp(-g)) * u)
        if 'res2' in cfgset:
            b_, l_ = lin_parts(hmid, l, 'mlp', 'down_proj'); x = r('res', r('res', x + l_) + b_)
        else:
            x = r('res', x + lin(hmid, l, 'mlp', 'down_proj'))
    xf = r('xf', rms(x, W['model.norm.weight']))
    logits = r('logits', xf @ W.get('lm_head.weight', W['model.embed_tokens.weight']).T)
    lg = logits[:, :-1].reshape(-1, logits.shape[-1]); lb = labels[:, 1:].reshape(-1)
    keep = lb != -100
    loss = torch.nn.functional.cross_entropy(lg[keep], lb[keep])
    loss.backward()
    return loss.item(), {k: v.grad for k, v in params.items()}


def worst(grads, refs):
    """The largest ||g - ref|| / ||ref|| over the tensors (test_engine_cuda's measure), and where."""
    w, at = 0.0, None
    for k, g in grads.items():
        e = (torch.linalg.norm(g - refs[k]) / torch.linalg.norm(refs[k])).item()
        if e > w: w, at = e, k
    return w, at


BF = 'bf16'
engine = {'xn1': (BF, None), 'q': (None, BF), 'k': (None, BF), 'v': (BF, BF), 'rope': ('fp16', None),
          's': (None, BF), 'P': (BF, None), 'att': (BF, BF), 'xn2': (BF, None), 'gate': (BF, BF),
          'up': (BF, BF), 'h': (BF, None), 'xa': (BF, None), 'xf': (BF, None), 'logits': (BF, BF)}
dres_only = dict(engine, res=(None, BF))
res = dict(engine, res=(BF, None))
dres = dict(engine, res=(BF, BF))
hf = {k: (BF, BF) for k in ['xn1', 'q', 'k', 'v', 'rope', 's', 'P', 'att', 'xn2', 'gate', 'up', 'h', 'xa', 'xf',
                            'logits', 'res']}
SETS = [('engine', engine), ('dres', dres_only), ('+res', res), ('+res2', dict(res, res2=(None, None))),
        ('+dres', dres), ('hf-bf16', hf)]
ref_loss = R['lora.loss'].item()
golden = {k: R['grad.' + k[:-len('.weight')] + '.default.weight'] for k in AD}
print('%s: %d layers, against the float64 reference' % (cfg.get('model_type', 'case'), NL))
for name, c in [('exact', {})] + SETS:
    loss, g = run(c)
    w, at = worst(g, golden)
    print('%-8s loss %.6f (rel %.2e)  worst LoRA gradient %.3e  %s' % (name, loss, abs(loss - ref_loss) / ref_loss, w, at))
# --layers=N: the case's layers repeated to depth N, each set against the unrounded run there
for n in [int(a.split('=', 1)[1]) for a in sys.argv[1:] if a.startswith('--layers=')]:
    _, g0 = run({}, n)
    print('%d layers (the case\'s repeated), against the unrounded run at that depth' % n)
    for name, c in SETS:
        loss, g = run(c, n)
        w, at = worst(g, g0)
        print('%-8s worst LoRA gradient %.3e  %s' % (name, w, at))
