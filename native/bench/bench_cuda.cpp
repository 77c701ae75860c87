// Timing of the CUDA backend on Mistral-7B shapes (not a test; run by scripts/gpu/run.sh with
// STEPS containing "bench"). Prints one JSON line per measurement.
//  - attention forward and backward kernels (32 heads, 8 KV heads, head_dim 128, causal)
//  - whole training steps (forward, backward, AdamW) of a Mistral-7B-shaped model with fewer
//    layers (LORA4J_BENCH_LAYERS, default 4), LoRA r=16 on all projections, random bf16 weights;
//    the per-layer time gives the 32-layer estimate. Beside each step's median time: the
//    board's energy per step, its mean power, the SM clock and the clock-limit reasons seen
//    (NVML, loaded at run time; absent fields when the driver's libnvidia-ml is not there),
//    because the frozen GEMMs run at the card's power cap and the same build moves by a few
//    milliseconds between calls: an A/B of ~1 ms reads better in joules than in seconds.
//    LORA4J_BENCH_STEPS sets the timed steps (default 5).
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "cuda/kernels/kernels.h"
#include "lora4j.h"
#include "nvml.h"
#include "paired.h"

using namespace lora4j;
using lora4j::bench::Nvml;
using bf = __nv_bfloat16;

#define CK(x)                                              \
  do {                                                     \
    cudaError_t e_ = (x);                                  \
    if (e_ != cudaSuccess) {                               \
      std::printf("%s: %s\n", #x, cudaGetErrorString(e_)); \
      std::exit(2);                                        \
    }                                                      \
  } while (0)
#define API(x)                                          \
  do {                                                  \
    int s_ = (x);                                       \
    if (s_) {                                           \
      std::printf("%s: %s\n", #x, lora4j_last_error()); \
      std::exit(2);                                     \
    }                                                   \
  } while (0)

// The next value of a xorshift64 stream, as a uniform float in [-1, 1) from its top 24 bits.
static inline float xorshift_uniform(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return float((x >> 40) & 0xFFFFFF) / 16777216.f * 2.f - 1.f;
}

// Uniform values in [-scale, scale) as bf16 bits, or fp16 bits when half; with normal, values
// of normal(0, scale) instead (Box-Muller on two uniforms).
static void fill_bf16(std::vector<uint16_t>& v, uint64_t seed, float scale, bool half = false,
                      bool normal = false) {
  unsigned nt = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> th;
  size_t chunk = (v.size() + nt - 1) / nt;
  for (unsigned t = 0; t < nt; ++t)
    th.emplace_back([&, t] {
      uint64_t x = seed * 0x9E3779B97F4A7C15ull + t * 0xBF58476D1CE4E5B9ull + 1;
      for (size_t i = t * chunk; i < std::min(v.size(), (t + 1) * chunk); ++i) {
        float f = xorshift_uniform(x) * scale;
        if (normal) {
          const float u1 = (float((x >> 40) & 0xFFFFFF) + 1.f) / 16777217.f;  // (0, 1]
          const float u2 = float((x >> 16) & 0xFFFFFF) / 16777216.f;
          f = std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853f * u2) * scale;
        }
        uint32_t b;
        std::memcpy(&b, &f, 4);
        v[i] = half ? __half_as_ushort(__float2half_rn(f))
                    : uint16_t((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
      }
    });
  for (auto& t : th) t.join();
}

static void bench_attention(int B, int S) {
  const int H = 32, KH = 8, D = 128;
  size_t nq = size_t(B) * S * H * D, nk = size_t(B) * S * KH * D;
  __half *q, *k;
  bf *v, *o, *dq, *dk, *dv, *dout;
  float *lse, *acc, *delta, *o32;
  CK(cudaMalloc(&q, nq * 2));
  CK(cudaMalloc(&k, nk * 2));
  CK(cudaMalloc(&v, nk * 2));
  CK(cudaMalloc(&o, nq * 2));
  CK(cudaMalloc(&dq, nq * 2));
  CK(cudaMalloc(&dk, nk * 2));
  CK(cudaMalloc(&dv, nk * 2));
  CK(cudaMalloc(&dout, nq * 2));
  CK(cudaMalloc(&o32, nq * 4));
  CK(cudaMalloc(&lse, size_t(B) * H * S * 4));
  CK(cudaMalloc(&acc, nq * 4));
  CK(cudaMalloc(&delta, size_t(B) * H * S * 4));
  std::vector<uint16_t> h(nq);
  fill_bf16(h, 1, 1.f, true);
  CK(cudaMemcpy(q, h.data(), nq * 2, cudaMemcpyHostToDevice));
  fill_bf16(h, 2, 1.f, true);
  CK(cudaMemcpy(k, h.data(), nk * 2, cudaMemcpyHostToDevice));
  fill_bf16(h, 3, 1.f);
  CK(cudaMemcpy(dout, h.data(), nq * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(v, h.data() + nk, nk * 2, cudaMemcpyHostToDevice));
  cuda::AttentionParams p = cuda::dense_attention_params(q, k, v, o, lse, B, S, H, KH, D);
  p.o_f32 = o32;
  p.scale = 1.f / std::sqrt(float(D));
  cuda::AttentionBackwardParams bp;
  bp.f = p;
  bp.dout = dout;
  bp.dq = dq;
  bp.dk = dk;
  bp.dv = dv;
  bp.dq_accum = acc;
  bp.delta = delta;
  bp.out_f32 = o32;
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  double flops_f = 4.0 * B * H * double(S) * S * D / 2;  // causal
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < 3; ++i) {
      CK(pass ? cuda::attention_backward(bp, 0) : cuda::attention_forward(p, 0));
    }
    std::vector<float> ts;
    for (int i = 0; i < 10; ++i) {
      CK(cudaEventRecord(e0));
      CK(pass ? cuda::attention_backward(bp, 0) : cuda::attention_forward(p, 0));
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      float ms;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      ts.push_back(ms);
    }
    std::sort(ts.begin(), ts.end());
    double ms = ts[ts.size() / 2];
    double fl = pass ? 2.5 * flops_f : flops_f;
    std::printf("{\"bench\":\"attention_%s\",\"B\":%d,\"S\":%d,\"ms\":%.3f,\"tflops\":%.1f}\n",
                pass ? "bwd" : "fwd", B, S, ms, fl / ms / 1e9);
  }
  cudaFree(q);
  cudaFree(k);
  cudaFree(v);
  cudaFree(o);
  cudaFree(dq);
  cudaFree(dk);
  cudaFree(dv);
  cudaFree(dout);
  cudaFree(lse);
  cudaFree(acc);
  cudaFree(delta);
  cudaFree(o32);
}

// The process's one NVML handle (loaded on first use).
static const Nvml& nvml_handle() {
  static const Nvml n = [] {
    char bus[64] = {};
    int cur = 0;
    const bool known = cudaGetDevice(&cur) == cudaSuccess &&
                       cudaDeviceGetPCIBusId(bus, sizeof bus, cur) == cudaSuccess;
    return Nvml(known ? bus : nullptr);
  }();
  return n;
}

// A Mistral-7B-shaped engine of `layers` layers with the statistics of the user's path
// (`lora4j init-model` weights, PEFT's adapter init): projection and embedding weights normal(0,
// 0.02) in bf16 (one matrix shared by every projection), norms 1; LoRA r=16 on `targets` with
// A uniform in +-1/sqrt(in) (PEFT's kaiming_uniform(a=sqrt(5))) and B zero. Before the
// seventeenth session A was left zero, so B's gradient (which needs x A^T) and A's (which needs
// dy B) stayed zero: every LoRA product ran on zeros, which the power-capped board spends less
// energy on than the trained adapter of a real run. Null with *err set when a call fails (the
// second engine of a pair may not fit).
static lora4j_engine* step_engine(int layers, int recompute, uint32_t targets, int offload,
                                  std::string* err) {
  lora4j_model_config c{};
  c.vocab_size = 32000; /* as shared/bench/hf_peft_baseline.py */
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_layers = layers;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  // LORA4J_BENCH_WINDOW: Mistral v0.1's sliding window (4096) instead of v0.3's none
  const char* window = std::getenv("LORA4J_BENCH_WINDOW");
  c.sliding_window = window ? std::atoi(window) : 0;
  c.max_seq_len = 32768;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 1e6;
  lora4j_engine_options o{};
  o.device = LORA4J_DEVICE_CUDA;
  o.recompute = recompute;
  o.offload_checkpoints = offload;
  lora4j_engine* e = nullptr;
  auto failed = [&](const char* what) {
    *err = std::string(what) + ": " + lora4j_last_error();
    if (e) lora4j_engine_destroy(e);
    return nullptr;
  };
  if (lora4j_engine_create(&c, &o, &e)) return failed("lora4j_engine_create");
  // weights: every name, random bf16 (norms ~1)
  const char* proj[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                        "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                        "mlp.down_proj"};
  int64_t outs[] = {4096, 1024, 1024, 4096, 14336, 14336, 4096},
          ins[] = {4096, 4096, 4096, 4096, 4096, 4096, 14336};
  std::vector<uint16_t> w(size_t(14336) * 4096);
  fill_bf16(w, 7, 0.02f, false, true);
  std::vector<uint16_t> emb(size_t(32000) * 4096);
  fill_bf16(emb, 9, 0.02f, false, true);
  std::vector<uint16_t> ones(4096, 0x3F80);
  if (lora4j_engine_set_weight(e, "model.embed_tokens.weight", LORA4J_DTYPE_BF16, emb.data(),
                               32000LL * 4096) ||
      lora4j_engine_set_weight(e, "lm_head.weight", LORA4J_DTYPE_BF16, emb.data(),
                               32000LL * 4096) ||
      lora4j_engine_set_weight(e, "model.norm.weight", LORA4J_DTYPE_BF16, ones.data(), 4096))
    return failed("lora4j_engine_set_weight");
  for (int l = 0; l < layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    if (lora4j_engine_set_weight(e, (p + "input_layernorm.weight").c_str(), LORA4J_DTYPE_BF16,
                                 ones.data(), 4096) ||
        lora4j_engine_set_weight(e, (p + "post_attention_layernorm.weight").c_str(),
                                 LORA4J_DTYPE_BF16, ones.data(), 4096))
      return failed("lora4j_engine_set_weight");
    for (int j = 0; j < 7; ++j)
      if (lora4j_engine_set_weight(e, (p + proj[j] + ".weight").c_str(), LORA4J_DTYPE_BF16,
                                   w.data(), outs[j] * ins[j]))
        return failed("lora4j_engine_set_weight");
  }
  if (lora4j_lora_attach(e, 16, 1.f, targets)) return failed("lora4j_lora_attach");
  int32_t count = 0;
  if (lora4j_lora_count(e, &count)) return failed("lora4j_lora_count");
  uint64_t x = 0x2545F4914F6CDD1Dull;
  for (int32_t i = 0; i < count; ++i) {
    char nm[256];
    int64_t rows = 0, cols = 0;
    if (lora4j_lora_info(e, i, nm, sizeof nm, &rows, &cols)) return failed("lora4j_lora_info");
    if (!std::strstr(nm, "lora_A")) continue;  // B stays zero
    std::vector<float> a(size_t(rows * cols));
    const float bound = 1.f / std::sqrt(float(cols));
    for (float& v : a) v = xorshift_uniform(x) * bound;
    if (lora4j_lora_set(e, LORA4J_STATE_PARAM, nm, LORA4J_DTYPE_F32, a.data(), rows * cols))
      return failed("lora4j_lora_set");
  }
  return e;
}

// The benchmark's batch: B rows of S tokens, labels = inputs.
// Every token counts in the loss, as in the reference stack's benchmark, unless:
// LORA4J_BENCH_MASKED=F (0 <= F < 1): the first F of each row's labels are -100, as a prompt's
// are under completion-only training;
// LORA4J_BENCH_PADDED=F: rows of mixed lengths as the trainer batches them, right-padded to S
// (mask 0, label -100 past each row's end): row r of B holds S (1 - F r / (B - 1)) tokens, so a
// batch's padding is F / 2 of its positions (the trainer's on rows of 1024 to 2048 tokens in
// batches of 4 was ~17-21%);
// LORA4J_BENCH_PACKED=N: rows packed as the trainer's --packing collates them: examples of
// N / 2 to 3 N / 2 tokens back to back (segment ids 1, 2, ..., positions restarting at 0, each
// example's first label -100), the last one cut at S.
static double bench_fraction(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::min(0.99, std::max(0.0, std::atof(v))) : 0.0;
}
static double bench_masked() { return bench_fraction("LORA4J_BENCH_MASKED"); }
static double bench_padded() { return bench_fraction("LORA4J_BENCH_PADDED"); }
static int bench_packed() {
  const char* v = std::getenv("LORA4J_BENCH_PACKED");
  return v ? std::max(0, std::atoi(v)) : 0;
}
// LORA4J_BENCH_LENGTHS=N (paired runs only): pair i steps both engines on a batch of sequence
// length S - (i mod N) d, d = S / (2 N) rounded down to a multiple of 8 (at least 8): N lengths
// from S down to about S / 2, as batches right-padded to their longest row come, each a new
// shape for the engine's CUDA graphs until it repeats (N at least the pairs: never). The warm-up
// steps run at S, so the activations are sized before the timed pairs.
static int bench_lengths() {
  const char* v = std::getenv("LORA4J_BENCH_LENGTHS");
  return v ? std::max(0, std::atoi(v)) : 0;
}
struct StepBatch {
  std::vector<int32_t> ids, labels, mask, pos, seg;
  lora4j_batch b{};
  StepBatch(int B, int S)
      : ids(size_t(B) * S),
        labels(size_t(B) * S),
        mask(size_t(B) * S, 1),
        pos(size_t(B) * S),
        seg(size_t(B) * S) {
    const int prompt = int(bench_masked() * S);
    const double padded = bench_padded();
    for (size_t i = 0; i < ids.size(); ++i) {
      const int r = int(i / size_t(S)), t = int(i % size_t(S));
      const int len = B > 1 ? int(S * (1.0 - padded * r / (B - 1))) : S;
      ids[i] = t < len ? int32_t((i * 2654435761u) % 32000) : 0;
      mask[i] = t < len ? 1 : 0;
      labels[i] = t < prompt || t >= len ? -100 : ids[i];
    }
    b.batch = B;
    b.seq = S;
    b.input_ids = ids.data();
    b.labels = labels.data();
    if (padded > 0) b.attention_mask = mask.data();  // as the trainer's collated batches
    if (const int N = bench_packed(); N > 0) {
      uint32_t h = 12345u;
      for (int r = 0; r < B; ++r)
        for (int t = 0, id = 1; t < S; ++id) {
          h = h * 1664525u + 1013904223u;
          const int len = std::max(1, N / 2 + int((h >> 8) % uint32_t(std::max(1, N))));
          for (int j = 0; j < len && t < S; ++j, ++t) {
            const size_t i = size_t(r) * S + size_t(t);
            seg[i] = id;
            pos[i] = j;
            if (j == 0) labels[i] = -100;
          }
        }
      b.position_ids = pos.data();
      b.segment_ids = seg.data();
    }
  }
};

static const lora4j_adamw kBenchOpt{1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.f};

static int bench_steps() {
  const char* steps_env = std::getenv("LORA4J_BENCH_STEPS");
  return std::max(1, steps_env ? std::atoi(steps_env) : 5);
}

// One timed training step: its wall time in seconds and the board's energy in joules (NaN
// without NVML). Returns the API's status.
static int timed_step(lora4j_engine* e, const StepBatch& sb, const Nvml& nvml, double* s, double* j,
                      double* loss) {
  lora4j_step_result r;
  const double j0 = nvml.energy_j();
  auto t0 = std::chrono::steady_clock::now();
  const int st = lora4j_train_step(e, &sb.b, &kBenchOpt, loss, &r);
  *s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  *j = nvml.energy_j() - j0;
  return st;
}

static std::vector<lora4j::bench::Assignment> g_ab;  // LORA4J_BENCH_AB, parsed in main
static std::string g_ab_spec;

static void bench_pair(int layers, int B, int S, int recompute, uint32_t targets, int offload);

static void bench_step(int layers, int B, int S, int recompute, uint32_t targets = 0x7F,
                       int offload = 0) {
  if (!g_ab.empty()) {
    bench_pair(layers, B, S, recompute, targets, offload);
    return;
  }
  std::string err;
  lora4j_engine* e = step_engine(layers, recompute, targets, offload, &err);
  if (!e) {
    std::printf("%s\n", err.c_str());
    std::exit(2);
  }
  StepBatch sb(B, S);
  double loss;
  lora4j_step_result r;
  for (int i = 0; i < 2; ++i) API(lora4j_train_step(e, &sb.b, &kBenchOpt, &loss, &r));
  const Nvml& nvml = nvml_handle();
  const int steps = bench_steps();
  std::vector<double> ts, js;
  double mhz = 0;
  unsigned long long why = 0;
  for (int i = 0; i < steps; ++i) {
    double t, j;
    API(timed_step(e, sb, nvml, &t, &j, &loss));
    ts.push_back(t);
    js.push_back(j);
    mhz += nvml.sm_mhz() / steps;  // after the step: the clock it ended at
    why |= nvml.limit_reasons();
  }
  const std::vector<double> by_time = ts;
  std::sort(ts.begin(), ts.end());
  std::sort(js.begin(), js.end());
  double s = ts[ts.size() / 2], j = js[js.size() / 2];
  int64_t in_use, peak;
  API(lora4j_engine_memory(e, &in_use, &peak));
  std::string power;
  if (nvml.ok && std::isfinite(j) && std::isfinite(mhz)) {  // the counter counts mJ; a step ~10^5
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        ",\"j_per_step\":%.1f,\"mean_w\":%.0f,\"sm_mhz\":%.0f,\"clock_limits\":\"0x%llx\"", j,
        j / s, mhz, why);
    power = buf;
  }
  std::string all = ",\"steps_s\":[";
  for (size_t i = 0; i < by_time.size(); ++i)
    all += (i ? "," : "") + std::to_string(by_time[i]).substr(0, 6);
  all += "]";
  std::printf(
      "{\"bench\":\"train_step\",\"layers\":%d,\"B\":%d,\"S\":%d,\"recompute\":%d,\"targets\":%u,"
      "\"offload\":%d,\"masked\":%.2f,\"padded\":%.2f,\"packed\":%d,\"s\":%.4f,"
      "\"tokens_per_s\":%.0f,\"peak_gib\":%.2f,\"loss\":%.4f%s%s}\n",
      layers, B, S, recompute, targets, offload, bench_masked(), bench_padded(), bench_packed(), s,
      B * S / s, peak / 1073741824.0, loss, power.c_str(), all.c_str());
  API(lora4j_engine_destroy(e));
}

// LORA4J_BENCH_AB=NAME=VALUE[,...]: engine a as the environment says, engine b made and stepped
// with the assignments set (bench/paired.h), two warm-up steps each, then
// LORA4J_BENCH_PAIRS pairs (default 10) alternating a b, b a, ...; one JSON line with each side's
// median step time and energy, the median ratio b / a of both with its quartiles, how many pairs
// b was lower in and the sign test's p. Both engines live at once: twice the memory of one.
static void bench_pair(int layers, int B, int S, int recompute, uint32_t targets, int offload) {
  using namespace lora4j::bench;
  char nums[192];
  std::snprintf(nums, sizeof nums,
                ",\"layers\":%d,\"B\":%d,\"S\":%d,\"recompute\":%d,\"targets\":%u,\"offload\":%d,"
                "\"masked\":%.2f,\"padded\":%.2f,\"packed\":%d,\"lengths\":%d",
                layers, B, S, recompute, targets, offload, bench_masked(), bench_padded(),
                bench_packed(), bench_lengths());
  const std::string head =
      "{\"bench\":\"train_step_pair\",\"ab\":\"" + json_text(g_ab_spec) + "\"" + nums;
  auto give_up = [&](const std::string& why, lora4j_engine* x, lora4j_engine* y) {
    std::printf("%s,\"error\":\"%s\"}\n", head.c_str(), json_text(why).c_str());
    if (x) lora4j_engine_destroy(x);
    if (y) lora4j_engine_destroy(y);
  };
  std::string err;
  lora4j_engine* ea = step_engine(layers, recompute, targets, offload, &err);
  if (!ea) return give_up("engine a: " + err, nullptr, nullptr);
  lora4j_engine* eb = nullptr;
  {
    EnvScope env(g_ab);
    eb = step_engine(layers, recompute, targets, offload, &err);
  }
  if (!eb) return give_up("engine b: " + err, ea, nullptr);
  StepBatch sb(B, S);
  const Nvml& nvml = nvml_handle();
  double loss[2] = {0, 0};
  lora4j_step_result r;
  for (int i = 0; i < 2; ++i) {
    if (lora4j_train_step(ea, &sb.b, &kBenchOpt, &loss[0], &r))
      return give_up(std::string("engine a's warm-up step: ") + lora4j_last_error(), ea, eb);
    EnvScope env(g_ab);
    if (lora4j_train_step(eb, &sb.b, &kBenchOpt, &loss[1], &r))
      return give_up(std::string("engine b's warm-up step: ") + lora4j_last_error(), ea, eb);
  }
  const char* pe = std::getenv("LORA4J_BENCH_PAIRS");
  const int pairs = std::max(1, pe ? std::atoi(pe) : 10);
  const int lengths = bench_lengths();
  std::vector<std::unique_ptr<StepBatch>> varied;
  for (int k = 0; k < lengths; ++k)
    varied.push_back(
        std::make_unique<StepBatch>(B, S - k * std::max(8, S / (2 * lengths) / 8 * 8)));
  std::vector<double> ta, tb, ja, jb;
  unsigned long long why = 0;
  for (int i = 0; i < pairs; ++i) {
    for (int k = 0; k < 2; ++k) {
      const bool side_a = (k == 0) == a_first(i);
      const StepBatch& now = lengths > 0 ? *varied[size_t(i % lengths)] : sb;
      double t, j;
      int st;
      if (side_a) {
        st = timed_step(ea, now, nvml, &t, &j, &loss[0]);
      } else {
        EnvScope env(g_ab);
        st = timed_step(eb, now, nvml, &t, &j, &loss[1]);
      }
      if (st)
        return give_up(std::string(side_a ? "engine a: " : "engine b: ") + lora4j_last_error(), ea,
                       eb);
      (side_a ? ta : tb).push_back(t);
      (side_a ? ja : jb).push_back(j);
      why |= nvml.limit_reasons();
    }
  }
  const PairSummary st = summarize_pairs(ta, tb), sj = summarize_pairs(ja, jb);
  int64_t in_use, peak_a, peak_b;
  API(lora4j_engine_memory(ea, &in_use, &peak_a));
  API(lora4j_engine_memory(eb, &in_use, &peak_b));
  char tail[256];
  std::snprintf(tail, sizeof tail,
                ",\"clock_limits\":\"0x%llx\",\"a_peak_gib\":%.2f,\"b_peak_gib\":%.2f,"
                "\"a_loss\":%.4f,\"b_loss\":%.4f}",
                why, peak_a / 1073741824.0, peak_b / 1073741824.0, loss[0], loss[1]);
  std::printf("%s,\"pairs\":%d%s%s%s\n", head.c_str(), st.pairs,
              pair_fields(st, "s", "b_faster", 4).c_str(),
              pair_fields(sj, "j", "b_less_energy", 1).c_str(), tail);
  lora4j_engine_destroy(ea);
  lora4j_engine_destroy(eb);
}

int main(int argc, char** argv) {
  // one line at a time: a run stopped by a time limit keeps the settings it finished
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int layers =
      std::getenv("LORA4J_BENCH_LAYERS") ? std::atoi(std::getenv("LORA4J_BENCH_LAYERS")) : 4;
  const char* settings = std::getenv("LORA4J_BENCH_SETTINGS");
  if (const char* ab = std::getenv("LORA4J_BENCH_AB")) {
    std::string err;
    if (!lora4j::bench::parse_assignments(ab, &g_ab, &err)) {
      std::printf("%s\n", err.c_str());
      return 2;
    }
    for (const auto& x : g_ab)
      if (x.name == "LORA4J_ATTENTION") {  // read once per process (attention.cu): not pairable
        std::printf("LORA4J_BENCH_AB: %s is read once per process; time it in separate runs\n",
                    x.name.c_str());
        return 2;
      }
    g_ab_spec = ab;
  } else {
    bench_attention(4, 2048);
    bench_attention(1, 8192);
  }
  if (settings && std::strcmp(settings, "reference") == 0) {
    // The four settings of the reference stack's script, whole model.
    bench_step(layers, 4, 2048, 0);
    bench_step(layers, 4, 2048, 1);
    bench_step(layers, 1, 8192, 1);
    bench_step(layers, 8, 4096, 1);
    return 0;
  }
  if (settings && std::strcmp(settings, "1x8192") == 0) {  // beside `lora4j train` at 1 x 8192
    bench_step(layers, 1, 8192, 1);
    return 0;
  }
  if (settings && std::strcmp(settings, "selective") == 0) {
    // recompute per layer with the attention output kept (2) beside plain per-layer (1)
    for (int S : {8192, 2048})
      for (int rc : {1, 2}) bench_step(layers, 8192 / S, S, rc);
    return 0;
  }
  if (settings && std::strcmp(settings, "attention") == 0) {
    // recompute with q, k, v and the attention output kept, offloaded (beside `lora4j train
    // --recompute attention --offload-checkpoints`, cli_bench.py's group "attention")
    bench_step(layers, 4, 2048, LORA4J_RECOMPUTE_ATTENTION, 0x7F, 1);
    bench_step(layers, 1, 8192, LORA4J_RECOMPUTE_ATTENTION, 0x7F, 1);
    bench_step(layers, 8, 4096, LORA4J_RECOMPUTE_ATTENTION, 0x7F, 1);
    return 0;
  }
  // one row alone, BxS-none or BxS-attention (recompute attention offloaded), e.g. 4x2048-none
  // (A/B sweeps of engine switches)
  int sb = 0, ss = 0;
  char mode[16] = {0};
  if (settings && std::sscanf(settings, "%dx%d-%15s", &sb, &ss, mode) == 3 && sb > 0 && ss > 0) {
    if (std::strcmp(mode, "none") == 0) {
      bench_step(layers, sb, ss, 0);
      return 0;
    }
    if (std::strcmp(mode, "attention") == 0) {
      bench_step(layers, sb, ss, LORA4J_RECOMPUTE_ATTENTION, 0x7F, 1);
      return 0;
    }
  }
  if (settings && std::strcmp(settings, "4x2048") == 0) {
    // the 4 x 2048 rows of the README table: no recompute, and recompute attention offloaded
    // (A/B runs of one engine change in one call, e.g. LORA4J_LORA_FOLD=0 against the default)
    bench_step(layers, 4, 2048, 0);
    bench_step(layers, 4, 2048, LORA4J_RECOMPUTE_ATTENTION, 0x7F, 1);
    return 0;
  }
  if (layers < 16) bench_step(layers / 2, 4, 2048, 0);  // the difference gives per-layer time
  bench_step(layers, 4, 2048, 0);
  bench_step(layers, 4, 2048, 1);
  bench_step(layers, 4, 2048, 0, LORA4J_TARGET_Q);  // LoRA overhead: all seven vs q only
  return 0;
}
