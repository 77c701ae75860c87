"""Anchor for multi-GPU: Hugging Face transformers + PEFT under torch DDP (NCCL), Mistral-7B shapes,
random bf16 weights, LoRA r16 all-linear, bf16 autocast, fp32 LoRA weights, fused AdamW, SDPA.
Run: torchrun --nproc_per_node N hf_ddp_baseline.py  (prints global tokens/s per setting on rank 0)
Also times an NCCL all-reduce of the LoRA gradient size (41,943,040 fp32).
Our copy of ../shared/bench/hf_ddp_baseline.py, measurement unchanged; it adds HF_SETTINGS (a subset
of the two settings: "4x2048" without checkpointing, "4x2048gc" with it) and, on rank 0, writes
everything it prints to $OUT/hf_ddp_baseline_w{world}.json (OUT defaults to /tmp/out)."""
import json, os, time
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from transformers import MistralConfig, MistralForCausalLM
from peft import LoraConfig, get_peft_model

dist.init_process_group("nccl")
rank, world = dist.get_rank(), dist.get_world_size()
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
dev = "cuda"
OUT = os.environ.get("OUT", "/tmp/out")
want = [w for w in os.environ.get("HF_SETTINGS", "").split(",") if w]
nccl = torch.cuda.nccl.version()  # a tuple in recent torch, an int before
res = {"world": world, "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
       "nccl": ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl), "runs": []}

buf = torch.ones(41943040, device=dev)
for _ in range(3): dist.all_reduce(buf)
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(20): dist.all_reduce(buf)
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 20
if rank == 0:
    ar = {"world": world, "allreduce_168MB_ms": dt * 1e3,
          "busbw_GBps": 2 * (world - 1) / world * buf.numel() * 4 / dt / 1e9}
    res.update(ar)
    print(json.dumps(ar), flush=True)
del buf

cfg = MistralConfig(vocab_size=32768, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
                    rms_norm_eps=1e-5, rope_theta=1e6, sliding_window=None, tie_word_embeddings=False)
cfg._attn_implementation = "sdpa"
torch.set_default_dtype(torch.bfloat16)
with torch.device(dev):
    model = MistralForCausalLM(cfg)
torch.set_default_dtype(torch.float32)
lcfg = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
model = get_peft_model(model, lcfg)
for p in model.parameters():
    if p.requires_grad: p.data = p.data.float()

for bs, seq, gc in [(4, 2048, False), (4, 2048, True)]:
    if want and f"{bs}x{seq}{'gc' if gc else ''}" not in want:
        continue
    if gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    ddp = DDP(model, device_ids=[torch.cuda.current_device()])
    opt = torch.optim.AdamW([p for p in ddp.parameters() if p.requires_grad], lr=1e-4, fused=True)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(11):
        ids = torch.randint(0, cfg.vocab_size, (bs, seq), device=dev)
        torch.cuda.synchronize(); dist.barrier(); t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = ddp(input_ids=ids, labels=ids).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize(); times.append(time.perf_counter() - t)
    med = sorted(times[3:])[len(times[3:]) // 2]
    if rank == 0:
        r = {"world": world, "bs_per_gpu": bs, "seq": seq, "grad_ckpt": gc, "step_s": med,
             "global_tokens_per_s": world * bs * seq / med,
             "peak_mem_GiB": torch.cuda.max_memory_allocated() / 2**30}
        res["runs"].append(r)
        print(json.dumps(r), flush=True)
    del ddp, opt
if rank == 0:
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"hf_ddp_baseline_w{world}.json"), "w") as f:
        json.dump(res, f, indent=1)
dist.destroy_process_group()
