"""bf16 error model of the Mistral forward against the float64 golden reference.

Runs a golden case (default hd128) in float64 with rounding applied at exactly the points where
the CUDA engine keeps 16-bit tensors, and reports the relative error of layer 1's output
(`base.hidden.1`) for each rounding point alone, and of the logits for the engine's rounding
sets: `before` (every activation bf16) and `now` (the q/k GEMMs run on the split bf16 hi + lo
normed input with fp32 outputs, RoPE rounds once to fp16), and `now` with the residual stream in
bf16 (the engine keeps it in fp32; scripts/bf16_grad_model.py asks the same of the gradients).
Shows where the CUDA engine's forward error comes from and what each change buys (see native/src/cuda/NOTES.md).
Run from a case folder:
    cd java/src/test/resources/hf-reference/hd128 && python3 ../../../../../../scripts/bf16_error_model.py
Needs numpy only.
"""
import json,numpy as np,glob,os,sys
sys.path.insert(0,os.path.dirname(os.path.abspath(__file__)))
from golden_case import read_safetensors as st, rope_tables
W={}
for f in glob.glob('model/*.safetensors'): W.update(st(f))
R=st('reference.safetensors'); cfg=json.load(open('reference.json'))['config']
def bf(x):
    x32=np.asarray(x,np.float32); b=x32.view(np.uint32).astype(np.uint64)
    b=((b+0x7FFF+((b>>16)&1))>>16)<<16
    return b.astype(np.uint32).view(np.float32).astype(np.float64)
H=cfg['num_attention_heads'];KH=cfg['num_key_value_heads'];D=cfg['head_dim']
mask=R['attention_mask']; B,S=mask.shape
cos,sin=rope_tables(cfg,S)
def rope(x): # [B,S,h,D]
    a=x[...,:D//2]; b=x[...,D//2:]; c=cos[None,:,None,:]; s=sin[None,:,None,:]
    return np.concatenate([a*c-b*s, b*c+a*s],-1)
def layer(x,l,R_):
    r=lambda name,v: bf(v) if name in R_ else v
    p='model.layers.%d.'%l
    def rms(x,w): return x/np.sqrt((x*x).mean(-1,keepdims=True)+1e-5)*w
    xn=rms(x,W[p+'input_layernorm.weight'])
    xq=xn if 'xn1_split' in R_ else r('xn1',xn)
    q=r('q',xq@W[p+'self_attn.q_proj.weight'].T).reshape(B,S,H,D); k=r('k',xq@W[p+'self_attn.k_proj.weight'].T).reshape(B,S,KH,D); v=r('v',r('xn1',xn)@W[p+'self_attn.v_proj.weight'].T).reshape(B,S,KH,D)
    h16=lambda a: a.astype(np.float16).astype(np.float64)
    q=rope(q); k=rope(k)
    q,k=(h16(q),h16(k)) if 'rope16' in R_ else (r('rope',q),r('rope',k))
    out=np.zeros((B,S,H,D))
    for b in range(B):
        for h in range(H):
            s=q[b,:,h,:]@k[b,:,h//(H//KH),:].T/np.sqrt(D)
            m=np.tril(np.ones((S,S)))*(mask[b][None,:]>0)
            s=np.where(m>0,s,-np.inf); mx=s.max(-1,keepdims=True); mx=np.where(np.isfinite(mx),mx,0)
            e=np.exp(s-mx); l_=e.sum(-1,keepdims=True); l_=np.where(l_>0,l_,1)
            P=e/l_
            out[b,:,h,:]=(r('P',e)@v[b,:,h//(H//KH),:])/l_ if 'P' in R_ else P@v[b,:,h//(H//KH),:]
    att=r('att',out.reshape(B,S,H*D))
    x2=r('res',x+att@W[p+'self_attn.o_proj.weight'].T)
    xn2=r('xn2',rms(x2,W[p+'post_attention_layernorm.weight']))
    g=r('gate',xn2@W[p+'mlp.gate_proj.weight'].T); u=r('up',xn2@W[p+'mlp.up_proj.weight'].T)
    hh=r('h',g/(1+np.exp(-g))*u)
    return r('res',x2+hh@W[p+'mlp.down_proj.weight'].T)
x0=R['base.hidden.0']; ref=R['base.hidden.1']
m=mask.astype(bool)
def err(a,ref=ref): return np.linalg.norm((a-ref)[m])/np.linalg.norm(ref[m])
before={'xn1','q','k','v','rope','P','att','xn2','gate','up','h'}
now=(before-{'q','k','rope'})|{'xn1_split','rope16'}
print('layer 1 output, exact', err(layer(x0,0,set())))
print('layer 1 output, before', err(layer(x0,0,before)))
print('layer 1 output, now', err(layer(x0,0,now)))
for name in sorted(before): print('  only',name, err(layer(x0,0,{name})))
def logits(R_):
    x=x0
    for l in range(cfg['num_hidden_layers']): x=layer(x,l,R_)
    xf=bf(x/np.sqrt((x*x).mean(-1,keepdims=True)+1e-5)*W['model.norm.weight'])
    return xf@W.get('lm_head.weight',W['model.embed_tokens.weight']).T
print('logits, before', err(logits(before),R['base.logits']))
print('logits, now', err(logits(now),R['base.logits']))
# 'res': the residual stream rounded to bf16 after each add, as Hugging Face's bf16 model keeps it
# (the engine keeps it in fp32)
print('logits, now + bf16 residual', err(logits(now|{'res'}),R['base.logits']))
