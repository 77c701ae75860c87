// The CUDA backend: the Mistral LoRA training step on one GPU. Same semantics as the CPU
// engine (see model/engine.h and lora4j.h); bf16 weights and activations, fp32 residual stream,
// fp32 LoRA master weights, gradients and AdamW moments.
//
// Memory (as llm.c): the frozen weights outside the projections (embedding, norms, LM head) in
// ONE bf16 allocation, and each projection weight in its own bf16 allocation, or in NF4 (codes
// and scales as bitsandbytes stores them, lora4j_nf4_weight) in its slot of ONE region for the
// NF4 projections, dequantized into one reused bf16 scratch buffer just before each GEMM that
// reads it, so a 4-bit model never holds a 16-bit copy of its projections; the LoRA parameters,
// gradients and moments in ONE fp32 arena laid out as [param | grad | exp_avg | exp_avg_sq], each
// section in LoraLayout order, plus a bf16 copy of the parameters used by the GEMMs; activations in
// ONE arena carved for the batch shape and reused every step (grown when a larger batch comes).
// Recompute LAYER keeps only each layer's input and recomputes the layer in the backward.
// Recompute SELECTIVE also keeps each layer's attention output and lse, ATTENTION its q, k and v
// as well. With offload_checkpoints the kept tensors go to pinned host memory on a copy stream
// while the next layers compute, and come back one layer ahead of the backward: the device holds
// two layers' worth. In a group of ranks (NCCL), a backward armed by dist_reduce_in_backward
// all-reduces the LoRA gradients bucket by bucket on a second stream (comm_stream_) while it
// computes the layers below; see the collectives section.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/check.h"
#include "cuda/backend.h"
#include "cuda/gemm.h"
#include "cuda/graph_cache.h"
#include "cuda/phase_times.h"
#include "cuda/kernels/aggregate.h"
#include "cuda/kernels/kernels.h"
#include "cuda/lm_head.h"
#include "cuda/nccl.h"
#include "model/aggregate_rules.h"
#include "model/engine.h"
#include "model/nf4.h"

#include <chrono>
#include <cstdlib>
#include <thread>

namespace lora4j {
namespace cuda {
namespace {

constexpr size_t kWorkspace = 32u << 20;

// inv_freq[i] = 1 / theta^(float(2i) / D): fp32 power of fp32 operands, as transformers (and the
// CPU twin) compute it.
float rope_inv_freq_host(int i, int D, double theta) {
  float base = float(theta), e = float(2 * i) / float(D);
  return 1.0f / float(std::pow(double(base), double(e)));
}

#define KCHECK(call) ::lora4j::cuda::cuda_check((call), #call)

// Projections that read the same input form a LoRA input group: q, k and v (the normed layer
// input), gate and up (the normed sum after attention); o and down stand alone. The targeted
// members of a group form their x A^T in one GEMM over their A matrices stacked, and add their
// s (dy B) A input gradients in one GEMM after the frozen ones: one pass over x and one read-
// modify-write of the fp32 input gradient per group instead of one per projection.
constexpr int kGroups = 4;
constexpr int kGroupOf[NUM_PROJ] = {0, 0, 0, 1, 2, 2, 3};
// The LoRA fold. For the groups whose input comes from an RMSNorm (q, k, v and gate, up), the
// input buffer x has spare columns holding the members' xa = s x A^T side by side, [x | xa], and
// each targeted member's frozen weight has spare columns holding its B beside W (zeros where the
// other members' xa sit), [W | 0 B 0]. Then one GEMM with K = in + members x r gives
// x W^T + s x A^T B^T: the LoRA output needs no pass of its own over y (lora_B forward wrote all
// of y, which the frozen GEMM then read back as C). Taken when the extra K is at most in / 16 (the
// zero columns cost FLOPs; at r 16 they are 1.2% of q, k, v's and 0.8% of gate, up's) and the
// weight is bf16 (an NF4 weight's scratch has no spare columns: its lora_B GEMM reads xa from x's
// spare columns as before). LORA4J_LORA_FOLD=0 turns it off (xa in buffers of their own), to time
// the two in one process; LORA4J_LORA_FOLD=1 folds whatever the extra K (the tests' small widths,
// where r is a large part of in).
constexpr bool kFoldGroup[kGroups] = {true, false, true, false};

struct LayerActs {
  bf16 *xn1, *v, *att, *xn2, *gate, *up, *h;
  f16 *q, *k;  // rotated, fp16 (the attention scores' operands)
  float *rstd1, *rstd2, *lse, *att32;
  void* xmid;  // the residual stream after attention: fp32, or bf16 with LORA4J_RESIDUAL=bf16
  bf16* xa[NUM_PROJ];
};

// A switch that is on unless the environment sets it to "0" (the A/B switches of this engine).
bool env_switch_on(const char* name) {
  const char* v = std::getenv(name);
  return !(v && std::strcmp(v, "0") == 0);
}

class CudaEngine final : public Engine {
 public:
  CudaEngine(const ModelShape& s, const lora4j_engine_options& opt) : Engine(s), opt_(opt) {
    check_device_index(opt.device_index);
    dev_ = opt.device_index;
    LORA4J_CU(cudaSetDevice(dev_));
    try {
      LORA4J_CU(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      LORA4J_CU(cudaStreamCreateWithFlags(&loss_stream_, cudaStreamNonBlocking));
      if (offload()) {
        LORA4J_CU(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
        for (int i = 0; i < 2; ++i) {
          LORA4J_CU(cudaEventCreateWithFlags(&ck_filled_[i], cudaEventDisableTiming));
          LORA4J_CU(cudaEventCreateWithFlags(&ck_moved_[i], cudaEventDisableTiming));
          LORA4J_CU(cudaEventCreateWithFlags(&ck_done_[i], cudaEventDisableTiming));
        }
        LORA4J_CU(cudaEventCreateWithFlags(&ck_joined_, cudaEventDisableTiming));
      }
      workspace_ = alloc(kWorkspace, "cuBLASLt workspace");
      gemm_.init(stream_, workspace_, kWorkspace);
      phases_.reset(PhaseTimes::from_env(stream_));
      if (phases_)
        gemm_.set_after([](void* c, const char* w) { static_cast<PhaseTimes*>(c)->mark(w); },
                        phases_.get());
      // frozen weights: one allocation for all but the projections, which get theirs when set
      specs_ = weight_specs(shape_);
      int64_t off = 0;
      for (size_t i = 0; i < specs_.size(); ++i) {
        index_[specs_[i].name] = int(i);
        if (is_proj(int(i))) {
          woff_.push_back(-1);
          continue;
        }
        woff_.push_back(off);
        off += (specs_[i].numel() + 127) / 128 * 128;  // 256-byte aligned tensors
      }
      weights_ = static_cast<bf16*>(alloc(size_t(off) * sizeof(bf16), "frozen weights"));
      wset_.assign(specs_.size(), false);
      proj_.assign(specs_.size(), ProjWeight{});
      qkv_block_.assign(size_t(shape_.c.num_layers), QkvBlock{});
      // RoPE inverse frequencies, fp32 as torch computes them
      int D = shape_.c.head_dim;
      std::vector<float> inv(size_t(D / 2));
      for (int i = 0; i < D / 2; ++i)
        inv[size_t(i)] = rope_inv_freq_host(i, D, shape_.c.rope_theta);
      inv_freq_ = static_cast<float*>(alloc(inv.size() * sizeof(float), "RoPE table"));
      to_device(inv_freq_, inv.data(), inv.size() * sizeof(float));
      scalars_ = alloc(64, "reduction scalars");
      {
        int major = 0, minor = 0;
        LORA4J_CU(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev_));
        LORA4J_CU(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev_));
        cc_ = major * 10 + minor;
      }
      set_qk_lo_mode();
      lora_dx_swiglu_ = env_switch_on("LORA4J_LORA_DX_SWIGLU");
      swiglu_dx_fused_ = env_switch_on("LORA4J_SWIGLU_DX_FUSED");
      swiglu_gu_fused_ = env_switch_on("LORA4J_SWIGLU_GU_FUSED");
      decode_gu_unfused_ = env_switch_on("LORA4J_DECODE_GU_UNFUSED");
      decode_qk_cache_ = env_switch_on("LORA4J_DECODE_QK_CACHE");
      decode_gemv_ = env_switch_on("LORA4J_DECODE_GEMV");
      decode_attention_ = env_switch_on("LORA4J_DECODE_ATTENTION");
      decode_fused_ = env_switch_on("LORA4J_DECODE_FUSED");
      decode_pdl_ = env_switch_on("LORA4J_DECODE_PDL") && cc_ >= 90;
      decode_greedy_device_ = env_switch_on("LORA4J_DECODE_GREEDY_DEVICE");
      decode_sample_device_ = env_switch_on("LORA4J_DECODE_SAMPLE_DEVICE");
      decode_norm_fold_ = env_switch_on("LORA4J_DECODE_NORM_FOLD");
      decode_gemv_split_ = env_switch_on("LORA4J_DECODE_GEMV_SPLIT");
      decode_lora_tail_ = env_switch_on("LORA4J_DECODE_LORA_TAIL");
      decode_norm_a_ = env_switch_on("LORA4J_DECODE_NORM_A");
      if (const char* f = std::getenv("LORA4J_SWIGLU_DX_FORM")) swiglu_dx_form_ = std::atoi(f);
      if (swiglu_dx_form_ < 0 || swiglu_dx_form_ > kSwigluDxForms) swiglu_dx_form_ = 0;
      lora_dy_pair_ = env_switch_on("LORA4J_LORA_DY_PAIR");
      lora_b_kernel_ = env_switch_on("LORA4J_LORA_B_KERNEL");
      lora_group_da_ = env_switch_on("LORA4J_LORA_GROUP_DA");
      qkv_dx_fold_ = env_switch_on("LORA4J_QKV_DX_FOLD");
      qkv_direct_ = env_switch_on("LORA4J_QKV_DX_DIRECT");
      qkv_wblock_ = env_switch_on("LORA4J_QKV_WBLOCK");
      qkv_pair_one_ = env_switch_on("LORA4J_QKV_PAIR_ONE");
      refresh_batch_ = env_switch_on("LORA4J_REFRESH_BATCH");
      attn_o_bf16_ = env_switch_on("LORA4J_ATTN_O_BF16");
      right_pad_unmasked_ = env_switch_on("LORA4J_RIGHT_PAD_UNMASKED");
      seg_runs_ = env_switch_on("LORA4J_SEGMENT_RUNS");
      if (const char* rs = std::getenv("LORA4J_RESIDUAL")) {
        if (std::strcmp(rs, "bf16") == 0)
          res16_ = true;
        else if (std::strcmp(rs, "fp32") != 0)
          fail(LORA4J_EINVAL,
               std::string("LORA4J_RESIDUAL is '") + rs + "': expected fp32 or bf16");
      }
      std::string bad;
      graph_mode_ = graph_mode_from_env(&bad);
      if (!bad.empty()) fail(LORA4J_EINVAL, bad);
      if (const char* gs = std::getenv("LORA4J_CUDA_GRAPHS_STATS")) graph_stats_path_ = gs;
      // LORA4J_LORA_DY_SLOTS=N sizes lora_dy_pair's row shares for N resident blocks (A/B runs)
      if (const char* ds = std::getenv("LORA4J_LORA_DY_SLOTS"))
        dy_slots_env_ = std::max(1, std::atoi(ds));
      int optin = 0;
      LORA4J_CU(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev_));
      smem_optin_ = size_t(optin);
      set_fold_layout();
    } catch (...) {
      release();
      throw;
    }
  }
  ~CudaEngine() override { release(); }

  // ---- weights -----------------------------------------------------------------------------
  void set_weight(const std::string& name, int32_t dtype, const void* data,
                  int64_t numel) override {
    device();
    drop_graphs();  // a weight's bounds choose kernels (qk_f16_ok), its storage may move
    dec_w16_ok_ = false;
    int i = widx(name);
    check_arg(numel == specs_[size_t(i)].numel(), "weight '" + name + "' has " +
                                                      std::to_string(specs_[size_t(i)].numel()) +
                                                      " elements, got " + std::to_string(numel));
    // bf16 is uploaded from where the caller has it (a mapped checkpoint: no host copy of the
    // tensor first); other types are converted into a host buffer first
    std::vector<uint16_t> host;
    const uint16_t* src = static_cast<const uint16_t*>(data);
    if (dtype != LORA4J_DTYPE_BF16) {
      host.resize(static_cast<size_t>(numel));
      std::vector<float> f(static_cast<size_t>(numel));
      to_f32(dtype, data, f.data(), numel);
      for (int64_t k = 0; k < numel; ++k) host[size_t(k)] = f32_to_bf16_host(f[size_t(k)]);
      src = host.data();
    }
    if (is_proj(i)) {
      const int64_t in = proj_in_of(i);
      bf16* d = dense_proj(i);  // first: it may allocate the storage wld describes
      upload_rows(d, wld(i), src, in, numel / in);
    } else {
      upload_rows(weights_ + woff_[size_t(i)], numel, src, numel, 1);
    }
    // layer l's input_layernorm is weight 1 + 9 l (wnorm1): its largest value sets the scale of
    // that layer's e4m3 q/k residue and whether its q/k input fits fp16 (qk_f16_ok)
    if (i % 9 == 1 && i / 9 < shape_.c.num_layers) set_lo8_scale(i / 9, src);
    note_qk_weight(i, src, numel);
    wset_[size_t(i)] = true;
    if (is_proj(i)) {
      fold_weight(i);
      pack_qkv(layer_of(i));
      LORA4J_CU(cudaStreamSynchronize(stream_));
    }
  }
  // Keeps the weight in NF4 on the device: codes, code table and scales (plain fp32, or the
  // double-quantized form as given), in its slot of the NF4 region (reserve_nf4_region); the
  // bf16 scratch buffer that the GEMMs read it through is allocated with the first NF4 weight
  // (the largest projection's size).
  void set_weight_nf4(const std::string& name, const lora4j_nf4_weight& w) override {
    drop_graphs();
    dec_w16_ok_ = false;
    device();
    const int i = widx(name);
    check_arg(is_proj(i) && w.numel == specs_[size_t(i)].numel(),
              "weight '" + name + "' cannot take an NF4 weight of " + std::to_string(w.numel) +
                  " elements");
    const int64_t blocks = nf4_blocks(w), nested = nf4_nested_blocks(w);
    const size_t bytes = nf4_bytes(w);
    std::vector<char> host(bytes, 0);
    Carver hc{host.data()};
    Nf4Params hp;
    nf4_layout(hc, w, hp);
    auto put = [&](const void* dst, const void* src, size_t n) {
      std::memcpy(const_cast<void*>(dst), src, n);
    };
    put(hp.codes, w.codes, size_t(nf4_code_bytes(w.numel)));
    put(hp.code_table, w.code_table, 16 * sizeof(float));
    if (w.absmax) {
      put(hp.absmax, w.absmax, size_t(blocks) * sizeof(float));
    } else {
      put(hp.absmax_codes, w.absmax_codes, size_t(blocks));
      put(hp.nested_table, w.nested_table, 256 * sizeof(float));
      put(hp.nested_absmax, w.nested_absmax, size_t(nested) * sizeof(float));
    }
    if (!scratch_) {
      int64_t most = 0;
      for (int p = 0; p < NUM_PROJ; ++p)
        most = std::max(most, shape_.proj_out(p) * shape_.proj_in(p));
      scratch_ =
          static_cast<bf16*>(alloc(size_t(most) * sizeof(bf16), "NF4 dequantization scratch"));
    }
    ProjWeight& pw = proj_[size_t(i)];
    if (!nf4_region_) reserve_nf4_region(w);
    const bool in_region = bytes <= nf4_slot_size_[size_t(i)];
    char* dev = in_region ? nf4_region_ + nf4_slot_off_[size_t(i)]
                          : static_cast<char*>(alloc(bytes, ("NF4 weight " + name).c_str()));
    try {
      to_device(dev, host.data(), bytes);
    } catch (...) {
      if (in_region) {  // the slot may have held this projection's previous NF4 form
        drop_proj(i);
        wset_[size_t(i)] = false;
      } else {
        free_dev(dev);
      }
      throw;
    }
    drop_proj(i);
    pw.nf4 = dev;
    pw.in_region = in_region;
    if (in_region) ++nf4_region_users_;
    Carver dc{dev};
    nf4_layout(dc, w, pw.p);
    pw.p.nested_blocksize = w.absmax ? 1 : w.nested_blocksize;
    pw.p.offset = w.absmax ? 0.f : w.offset;
    pw.p.numel = w.numel;
    pw.p.blocksize = w.blocksize;
    pw.p.half_first = w.dtype == LORA4J_DTYPE_F16;
    wset_[size_t(i)] = true;
    note_qk_bound(i, nf4_bound(w));
  }
  // A bound on the magnitude of an NF4 weight's dequantized values: the largest code times the
  // largest scale (plain, or nested table value times nested scale plus the offset).
  static float nf4_bound(const lora4j_nf4_weight& w) {
    auto amax = [](const float* p, int64_t n) {  // infinite when any value is not finite
      float m = 0.f;
      for (int64_t k = 0; k < n; ++k)
        m = std::isfinite(p[k]) ? std::max(m, std::fabs(p[k])) : INFINITY;
      return m;
    };
    const float code = amax(w.code_table, 16);
    if (w.absmax) return code * amax(w.absmax, nf4_blocks(w));
    return code * (amax(w.nested_table, 256) * amax(w.nested_absmax, nf4_nested_blocks(w)) +
                   std::fabs(w.offset));
  }
  void get_weight(const std::string& name, float* out, int64_t numel) override {
    device();
    int i = widx(name);
    check_arg(numel == specs_[size_t(i)].numel(), "weight '" + name + "' has " +
                                                      std::to_string(specs_[size_t(i)].numel()) +
                                                      " elements, got " + std::to_string(numel));
    std::vector<uint16_t> host(static_cast<size_t>(numel));
    if (is_proj(i) && !wset_[size_t(i)])
      fail(LORA4J_ESTATE, "weight '" + name + "' has not been set");
    if (is_proj(i))
      download_proj(gemm_weight(i), host.data(), i);
    else
      to_host(host.data(), weights_ + woff_[size_t(i)], size_t(numel) * 2);
    to_f32(LORA4J_DTYPE_BF16, host.data(), out, numel);
  }
  void memory(int64_t* in_use, int64_t* peak) override {
    *in_use = in_use_;
    *peak = peak_;
  }

  // ---- LoRA ----------------------------------------------------------------------------------
  void lora_attach(int32_t rank, float scale, uint32_t targets) override {
    device();
    settle("the reductions of the last backward");
    LoraLayout l = make_lora_layout(shape_, rank, scale, targets);
    lora_detach();
    // the groups: members in projection order. LORA4J_LORA_GROUPS=0 makes every projection its
    // own group (one GEMM per projection, as before the groups), to time the two in one process.
    const bool grouped = env_switch_on("LORA4J_LORA_GROUPS");
    int members[NUM_PROJ] = {};
    for (int p = 0; p < NUM_PROJ; ++p) {
      const int g = grouped ? kGroupOf[p] : p;
      grp_pos_[p] = (targets & (1u << p)) ? members[g]++ : 0;
    }
    for (int p = 0; p < NUM_PROJ; ++p) {
      grp_id_[p] = grouped ? kGroupOf[p] : p;
      grp_size_[p] = members[grp_id_[p]];
    }
    const int64_t L = shape_.c.num_layers;
    grp_a_off_.assign(size_t(L * kGroups), -1);
    int64_t grp_total = 0;
    for (int64_t layer = 0; layer < L; ++layer)
      for (int p = 0; p < NUM_PROJ; ++p)
        if (grp_size_[p] >= 2 && grp_pos_[p] == 0 && (targets & (1u << p))) {
          grp_a_off_[size_t(layer * kGroups + kGroupOf[p])] = grp_total;
          grp_total += int64_t(grp_size_[p]) * rank * shape_.proj_in(p);
        }
    arena_ = static_cast<float*>(alloc(size_t(l.total) * 4 * sizeof(float), "LoRA arena"));
    try {
      lora_bf16_ = static_cast<bf16*>(alloc(size_t(l.total) * sizeof(bf16), "LoRA bf16 copy"));
      if (grp_total > 0)
        grp_a_ = static_cast<bf16*>(
            alloc(size_t(grp_total) * sizeof(bf16), "LoRA A matrices stacked per input group"));
      // at most three refresh copies per projection: stacked A, the q/k/v block's A rows, folded B
      if (refresh_batch_) {
        copy_cap_ = std::min<int64_t>(L * NUM_PROJ * 3, cuda::kMaxCopies);
        copy_table_ = static_cast<cuda::Copy2D*>(
            alloc(size_t(copy_cap_) * sizeof(cuda::Copy2D), "optimizer refresh copy table"));
      }
      copies_up_.clear();
    } catch (...) {
      free_dev(arena_);
      arena_ = nullptr;
      if (lora_bf16_) free_dev(lora_bf16_);
      lora_bf16_ = nullptr;
      if (grp_a_) free_dev(grp_a_);
      grp_a_ = nullptr;
      copy_cap_ = 0;
      throw;
    }
    LORA4J_CU(cudaMemsetAsync(arena_, 0, size_t(l.total) * 4 * sizeof(float), stream_));
    LORA4J_CU(cudaMemsetAsync(lora_bf16_, 0, size_t(l.total) * sizeof(bf16), stream_));
    if (grp_a_) LORA4J_CU(cudaMemsetAsync(grp_a_, 0, size_t(grp_total) * sizeof(bf16), stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
    layout_ = std::make_unique<LoraLayout>(std::move(l));
    step_ = 0;
    set_fold_layout();
    for (size_t i = 0; i < specs_.size(); ++i)
      if (is_proj(int(i))) fold_weight(int(i));
    for (int layer = 0; layer < shape_.c.num_layers; ++layer) pack_qkv(layer);
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }
  // ---- the LoRA fold (kFoldGroup) ------------------------------------------------------------
  static int first_of(int g) {
    for (int p = 0; p < NUM_PROJ; ++p)
      if (kGroupOf[p] == g) return p;
    return 0;
  }
  // Group g's xa live in spare columns of its input buffer (and its members' weights can fold).
  bool xa_in_x(int g) const {
    return fold_mode_ != 0 && kFoldGroup[g] && fold_cols_[g] > 0 &&
           (fold_mode_ == 2 || fold_cols_[g] * 16 <= shape_.proj_in(first_of(g)));
  }
  // The precision of the q and k GEMMs' input (layer_forward). By default (qk_f16_) both run once
  // in fp16: the RMSNorm writes its output a second time in fp16 (11 significant bits), the
  // weight is converted to fp16 into wf16_ before each GEMM, fp32 accumulation; for a layer
  // whose weights qk_f16_ok does not vouch for, and with LORA4J_QK_LO=e4m3 or bf16, the bf16
  // GEMM runs on the bf16 output and a second GEMM adds its rounding residue: in e4m3 on sm_89
  // and later when every leading dimension suits cuBLASLt's FP8 kernels (multiples of 16),
  // unless LORA4J_QK_LO=bf16 (the residue written by the RMSNorm in e4m3 scaled by
  // lo8_scale_[layer], the weight quantized with one power-of-two scale into w8_), else in bf16.
  void set_qk_lo_mode() {
    const char* env = std::getenv("LORA4J_QK_LO");
    const int64_t d = shape_.c.hidden_size, qd = shape_.q_dim(), kvd = shape_.kv_dim();
    qk_f16_ =
        !(env && (std::strcmp(env, "bf16") == 0 || std::strcmp(env, "e4m3") == 0)) && d % 8 == 0;
    qk_f16_ok_.assign(size_t(shape_.c.num_layers), 0);
    qk_lo_e4m3_ = cc_ >= 89 && !(env && std::strcmp(env, "bf16") == 0) && d % 16 == 0 &&
                  qd % 16 == 0 && kvd % 16 == 0;
    lo8_scale_.assign(size_t(shape_.c.num_layers), 1.f);
    if (!qk_lo_e4m3_) return;
    w8_ = static_cast<uint8_t*>(alloc(size_t(std::max(qd, kvd) * d), "e4m3 weight scratch"));
    w8_scales_ =
        static_cast<float*>(alloc((kE4m3InvScale + 1) * sizeof(float), "e4m3 weight scale"));
  }
  // The residue's scale for layer l from its input_layernorm weight (bf16 bits): |residue| <=
  // 2^-8 |y| and |y| <= sqrt(d) max |w| (the normed row has mean square below 1), so the largest
  // power of two that keeps 2^-8 sqrt(d) max |w| within e4m3's 448 never saturates. The same
  // bound sqrt(d) max |w| decides whether the layer's q/k input fits fp16 (qk_f16_ok).
  void set_lo8_scale(int l, const uint16_t* w) {
    const int64_t d = shape_.c.hidden_size;
    std::vector<float> f(static_cast<size_t>(d));
    to_f32(LORA4J_DTYPE_BF16, w, f.data(), d);
    float m = 0.f;
    for (float v : f) m = std::max(m, std::fabs(v));
    lo8_scale_[size_t(l)] = e4m3_pow2_scale(std::ldexp(std::sqrt(float(d)) * m, -8));
    set_qk_f16_bit(l, kF16Norm, std::sqrt(float(d)) * m <= kF16Bound);
  }
  // Whether layer l's q and k GEMMs may run in fp16 (qk_f16_ok): its normed input is bounded by
  // sqrt(d) max |w| of its input_layernorm (the row's mean square is below 1), its q and k weights
  // by their largest magnitudes (an NF4 weight's by its codes and scales, nf4_bound), each checked
  // when the weight is set; every bound must stay under half of fp16's largest finite value
  // (65504), so nothing converts to infinity (a LoRA product beside them, or a merge's, is of the
  // same order as the frozen values).
  static constexpr float kF16Bound = 32768.f;
  static constexpr uint8_t kF16Norm = 1, kF16Q = 2, kF16K = 4, kF16All = 7;
  void set_qk_f16_bit(int l, uint8_t bit, bool ok) {
    uint8_t& b = qk_f16_ok_[size_t(l)];
    b = ok ? uint8_t(b | bit) : uint8_t(b & ~bit);
  }
  void note_qk_bound(int i, float bound) {
    const WeightSpec& sp = specs_[size_t(i)];
    if (sp.layer < 0 || (sp.slot != Q && sp.slot != K)) return;
    set_qk_f16_bit(sp.layer, sp.slot == Q ? kF16Q : kF16K, bound <= kF16Bound);  // false for NaN
  }
  void note_qk_weight(int i, const uint16_t* w, int64_t numel) {
    const WeightSpec& sp = specs_[size_t(i)];
    if (sp.layer < 0 || (sp.slot != Q && sp.slot != K)) return;
    // the largest magnitude's bits: bf16 magnitudes order as their 15 low bits do (infinity and
    // NaN above every finite value)
    uint16_t top = 0;
    for (int64_t k = 0; k < numel; ++k) top = std::max<uint16_t>(top, w[k] & 0x7FFFu);
    float m = 0.f;
    to_f32(LORA4J_DTYPE_BF16, &top, &m, 1);
    note_qk_bound(i, top < 0x7F80u ? m : INFINITY);
  }
  bool qk_f16_ok(int l) const { return qk_f16_ && qk_f16_ok_[size_t(l)] == kF16All; }
  // fold_pos_, fold_cols_, xld_ and xa_ld_ for the attached adapter (or none).
  void set_fold_layout() {
    const char* env = std::getenv("LORA4J_LORA_FOLD");
    fold_mode_ = !layout_ || (env && std::strcmp(env, "0") == 0) ? 0
                 : env && std::strcmp(env, "1") == 0             ? 2
                                                                 : 1;
    const int64_t r = layout_ ? layout_->rank : 0;
    int members[kGroups] = {};
    for (int p = 0; p < NUM_PROJ; ++p)
      fold_pos_[p] = layout_ && (layout_->targets & (1u << p)) ? members[kGroupOf[p]]++ : 0;
    for (int g = 0; g < kGroups; ++g) {
      fold_cols_[g] = members[g] * r;
      const int64_t in = shape_.proj_in(first_of(g));
      xld_[g] = xa_in_x(g) ? in + (fold_cols_[g] + 7) / 8 * 8 : in;  // 16-byte aligned rows
    }
    for (int p = 0; p < NUM_PROJ; ++p)
      xa_ld_[p] = xa_in_x(kGroupOf[p]) ? xld_[kGroupOf[p]] : int64_t(grp_size_[p]) * r;
  }
  static int layer_of(int i) { return (i - 1) / 9; }
  int proj_of(int i) const { return specs_[size_t(i)].slot; }
  int64_t proj_in_of(int i) const { return shape_.proj_in(proj_of(i)); }
  // The row stride of projection i's bf16 weight (an NF4 weight's scratch: its in).
  int64_t wld(int i) const {
    const ProjWeight& pw = proj_[size_t(i)];
    return pw.dense && pw.ld ? pw.ld : proj_in_of(i);
  }
  // The stride projection (l, p)'s bf16 weight should have: with its B beside W when it folds.
  int64_t want_ld(int l, int p) const {
    const int g = kGroupOf[p];
    return xa_in_x(g) && has_lora(l, p) ? xld_[g] : shape_.proj_in(p);
  }
  // The K of projection (l, p)'s frozen GEMM: its input width, and when folded x's spare columns
  // (the group's xa, p's at fold_pos_) against its B columns
  int64_t gemm_k(int l, int p) const {
    return folded(l, p) ? shape_.proj_in(p) + fold_cols_[kGroupOf[p]] : shape_.proj_in(p);
  }
  // projection (l, p)'s LoRA term formed beside its frozen GEMM (attached, not folded into it)
  bool lora_apart(int l, int p) const { return has_lora(l, p) && !folded(l, p); }
  bool folded(int l, int p) const {
    const ProjWeight& pw = proj_[size_t(proj_index(l, p))];
    const int64_t want = want_ld(l, p);
    return want != shape_.proj_in(p) && pw.dense && pw.ld == want;
  }
  // W's [out, in] values of projection i from dev (its row stride wld: a folded weight's B
  // columns left out) to the host (contiguous), on stream_, returning when done.
  void download_proj(const bf16* dev, uint16_t* host, int i) {
    const size_t in = size_t(proj_in_of(i)), ld = size_t(wld(i)),
                 out = size_t(specs_[size_t(i)].numel()) / in;
    LORA4J_CU(
        cudaMemcpy2DAsync(host, in * 2, dev, ld * 2, in * 2, out, cudaMemcpyDeviceToHost, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }
  // Host bf16 rows [rows, cols] (contiguous) to dev (row stride ld elements), returning when
  // done: contiguous rows as one run of bytes, strided ones (a weight laid out for a folded
  // adapter) by a 2D copy. The former path (each tensor copied into a host vector, then a 2D copy
  // from that pageable memory even where the rows were contiguous) loaded the 7B checkpoint in
  // 13-16 s, this one in ~3 s (forty-first session, RESULTS.md).
  void upload_rows(bf16* dev, int64_t ld, const uint16_t* src, int64_t cols, int64_t rows) {
    const size_t row_bytes = size_t(cols) * 2;
    if (ld == cols)
      LORA4J_CU(
          cudaMemcpyAsync(dev, src, row_bytes * size_t(rows), cudaMemcpyHostToDevice, stream_));
    else
      LORA4J_CU(cudaMemcpy2DAsync(dev, size_t(ld) * 2, src, row_bytes, row_bytes, size_t(rows),
                                  cudaMemcpyHostToDevice, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }
  // Projection i's bf16 weight moved to a buffer of row stride ld (W's columns copied).
  void set_weight_ld(int i, int64_t ld) {
    ProjWeight& pw = proj_[size_t(i)];
    const int64_t in = proj_in_of(i), cur = wld(i), out = specs_[size_t(i)].numel() / in;
    if (!pw.dense || cur == ld) return;
    if (pw.in_block) unpack_qkv(layer_of(i));  // now an allocation of its own
    bf16* d =
        static_cast<bf16*>(alloc(size_t(out * ld) * sizeof(bf16), specs_[size_t(i)].name.c_str()));
    cudaError_t e = cudaMemcpy2DAsync(d, size_t(ld) * 2, pw.dense, size_t(cur) * 2, size_t(in) * 2,
                                      size_t(out), cudaMemcpyDeviceToDevice, stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) {
      free_dev(d);
      LORA4J_CU(e);
    }
    free_dev(pw.dense);
    pw.dense = d;
    pw.ld = ld == in ? 0 : ld;
  }
  // Projection i laid out for the attached adapter: [W | zeros] with its B in its columns when it
  // folds. No-op for an NF4 weight or one not set yet.
  void fold_weight(int i) {
    const int l = layer_of(i), p = proj_of(i);
    set_weight_ld(i, want_ld(l, p));
    const ProjWeight& pw = proj_[size_t(i)];
    const int64_t in = shape_.proj_in(p), ld = wld(i);
    if (!pw.dense || ld == in) return;
    LORA4J_CU(cudaMemset2DAsync(pw.dense + in, size_t(ld) * 2, 0, size_t(ld - in) * 2,
                                size_t(shape_.proj_out(p)), stream_));
    refresh_fold(l, p);
  }
  // A device-to-device copy of rows x width bytes between row pitches (bytes) on stream_, or, while
  // the optimizer step collects its refresh copies (batch_copies_), an entry of its table.
  void copy_d2d(void* dst, int64_t dpitch, const void* src, int64_t spitch, int64_t width,
                int64_t rows) {
    if (batch_copies_) {
      copies_.push_back(cuda::Copy2D{src, dst, spitch, dpitch, width, rows});
      return;
    }
    LORA4J_CU(cudaMemcpy2DAsync(dst, size_t(dpitch), src, size_t(spitch), size_t(width),
                                size_t(rows), cudaMemcpyDeviceToDevice, stream_));
  }
  // The collected copies as one copy2d_batched launch. The table goes to the device only when it
  // differs from the one there (its pointers change with allocations, not from step to step);
  // copies_up_ is the source of that upload and stays unchanged until the step's closing
  // synchronisation. More copies than the table holds (not expected): one call each.
  void run_copies() {
    if (copies_.empty()) return;
    if (int64_t(copies_.size()) > copy_cap_ || !copy_table_) {
      for (const cuda::Copy2D& c : copies_)
        copy_d2d(c.dst, c.dpitch, c.src, c.spitch, c.width, c.rows);
      return;
    }
    const size_t bytes = copies_.size() * sizeof(cuda::Copy2D);
    if (copies_up_.size() != copies_.size() ||
        std::memcmp(copies_up_.data(), copies_.data(), bytes) != 0) {
      copies_up_ = copies_;
      LORA4J_CU(
          cudaMemcpyAsync(copy_table_, copies_up_.data(), bytes, cudaMemcpyHostToDevice, stream_));
    }
    KCHECK(copy2d_batched(copy_table_, int(copies_.size()), stream_));
  }
  // B of (l, p) into its columns of the folded weight, from the bf16 copy; every write of
  // lora_bf16_'s B matrices is followed by this (no-op when (l, p) does not fold).
  void refresh_fold(int l, int p) {
    if (!folded(l, p)) return;
    const ProjWeight& pw = proj_[size_t(proj_index(l, p))];
    const int64_t r = layout_->rank, in = shape_.proj_in(p);
    copy_d2d(pw.dense + in + fold_pos_[p] * r, pw.ld * 2, lora_b(l, p), r * 2, r * 2,
             shape_.proj_out(p));
  }
  // ---- q, k and v's weights in one allocation (qkv_dx's weight operand) ----------------------
  // Layer l's input gradient through q, k and v is one GEMM over their weights stacked, with the
  // group's A after them (qkv_dx). Where the layer's three weights are bf16 with one row stride,
  // pack_qkv moves them into one allocation, side by side in that order, with rows for the A
  // matrices after them (refresh_block_a keeps those current), so that the GEMM reads its operand
  // in place instead of copying 50 MB (Mistral-7B) into wqkv_ every layer of every step. Every
  // path that reallocates or frees a member (set_weight_ld, drop_proj) moves the three out first
  // (unpack_qkv); set_weight, lora_attach and lora_merge pack again, with A rows for the adapter
  // attached (none after a merge; lora_detach leaves them to the next attach, and qkv_dx copies
  // while they do not match).
  bool qkv_fold_layout(int l) const {
    const bool q = has_lora(l, Q), k = has_lora(l, K), v = has_lora(l, V);
    if (!q && !k && !v) return true;
    return q && k && v && grp_size_[Q] == 3 && grp_id_[Q] == grp_id_[K] && grp_id_[K] == grp_id_[V];
  }
  // The group's stacked A rows in layer l's fold (3 r with LoRA on q, k and v; else 0).
  int64_t qkv_a_rows(int l) const { return has_lora(l, Q) ? t_ld(Q) : 0; }
  bool qkv_in_block(int l) const {
    return proj_[size_t(proj_index(l, Q))].in_block && proj_[size_t(proj_index(l, K))].in_block &&
           proj_[size_t(proj_index(l, V))].in_block;
  }
  void pack_qkv(int l) {
    if (!qkv_wblock_ || !qkv_dx_fold_ || !qkv_fold_layout(l)) return;
    const int idx[3] = {proj_index(l, Q), proj_index(l, K), proj_index(l, V)};
    for (int i : idx)
      if (!proj_[size_t(i)].dense) return;  // unset or NF4
    const int64_t ld = wld(idx[0]);
    if (wld(idx[1]) != ld || wld(idx[2]) != ld) return;
    const int64_t arows = qkv_a_rows(l);
    QkvBlock& b = qkv_block_[size_t(l)];
    if (!qkv_in_block(l) || b.ld != ld || b.arows != arows) {  // A rows for this adapter, no more
      const int64_t rows = shape_.q_dim() + 2 * shape_.kv_dim() + arows;
      bf16* blk = static_cast<bf16*>(
          alloc(size_t(rows * ld) * sizeof(bf16), "q, k and v weights of a layer, stacked"));
      int64_t row = 0;
      cudaError_t e = cudaSuccess;
      for (int p : {Q, K, V}) {
        const int64_t out = shape_.proj_out(p);
        if (e == cudaSuccess)
          e = cudaMemcpyAsync(blk + row * ld, proj_[size_t(proj_index(l, p))].dense,
                              size_t(out * ld) * sizeof(bf16), cudaMemcpyDeviceToDevice, stream_);
        row += out;
      }
      if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
      if (e != cudaSuccess) {
        free_dev(blk);
        LORA4J_CU(e);
      }
      row = 0;
      for (int p : {Q, K, V}) {
        ProjWeight& pw = proj_[size_t(proj_index(l, p))];
        if (!pw.in_block) free_dev(pw.dense);
        pw.dense = blk + row * ld;
        pw.in_block = true;
        row += shape_.proj_out(p);
      }
      if (b.p) free_dev(b.p);
      b = QkvBlock{blk, ld, arows};
    }
    for (int p : {Q, K, V}) refresh_block_a(l, p);
  }
  // The members of layer l's block back to allocations of their own; the block freed.
  void unpack_qkv(int l) {
    QkvBlock& b = qkv_block_[size_t(l)];
    if (!b.p) return;
    bf16* own[3] = {nullptr, nullptr, nullptr};
    cudaError_t e = cudaSuccess;
    try {
      for (int k = 0; k < 3; ++k) {
        const int p = Q + k;
        const ProjWeight& pw = proj_[size_t(proj_index(l, p))];
        if (!pw.in_block) continue;
        const size_t bytes = size_t(shape_.proj_out(p) * wld(proj_index(l, p))) * sizeof(bf16);
        own[k] = static_cast<bf16*>(alloc(bytes, specs_[size_t(proj_index(l, p))].name.c_str()));
        if (e == cudaSuccess)
          e = cudaMemcpyAsync(own[k], pw.dense, bytes, cudaMemcpyDeviceToDevice, stream_);
      }
      if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
      LORA4J_CU(e);
    } catch (...) {
      for (bf16* o : own) free_dev(o);
      throw;
    }
    for (int k = 0; k < 3; ++k) {
      ProjWeight& pw = proj_[size_t(proj_index(l, Q + k))];
      if (!pw.in_block) continue;
      pw.dense = own[k];
      pw.in_block = false;
    }
    free_dev(b.p);
    b = QkvBlock{};
  }
  // A of (l, p) into its rows of layer l's block, from the bf16 copy (no-op without them).
  void refresh_block_a(int l, int p) {
    if (p != Q && p != K && p != V) return;
    const QkvBlock& b = qkv_block_[size_t(l)];
    if (!b.p || !has_lora(l, p) || !qkv_fold_layout(l) || b.arows != qkv_a_rows(l)) return;
    const int64_t r = layout_->rank, in = shape_.proj_in(p);
    const int64_t row = shape_.q_dim() + 2 * shape_.kv_dim() + int64_t(grp_pos_[p]) * r;
    copy_d2d(b.p + row * b.ld, b.ld * 2, lora_a(l, p), in * 2, in * 2, r);
  }
  // Layer l's block as qkv_dx's weight operand: packed, and its A rows current for the adapter.
  bool qkv_block_ready(int l) const {
    const QkvBlock& b = qkv_block_[size_t(l)];
    return b.p && qkv_in_block(l) && b.arows == qkv_a_rows(l);
  }
  // The stacked copy of A of (layer, proj), from its bf16 copy (no-op outside a group of two or
  // more); every write of lora_bf16_'s A matrices is followed by this.
  void refresh_grp_a(int l, int p) {
    if (!has_lora(l, p) || grp_size_[p] < 2) return;
    const int64_t r = layout_->rank, in = shape_.proj_in(p);
    copy_d2d(grp_a(l, kGroupOf[p]) + int64_t(grp_pos_[p]) * r * in, r * in * 2, lora_a(l, p),
             r * in * 2, r * in * 2, 1);
    refresh_block_a(l, p);
  }
  void lora_detach() override {
    settle("the reductions of the last backward");
    drop_graphs();  // the adapter's layout chooses the step's launches
    dec_w16_ok_ = false;
    reduced_ = false;
    if (arena_) free_dev(arena_);
    if (lora_bf16_) free_dev(lora_bf16_);
    if (grp_a_) free_dev(grp_a_);
    if (copy_table_) free_dev(copy_table_);
    arena_ = nullptr;
    lora_bf16_ = nullptr;
    grp_a_ = nullptr;
    copy_table_ = nullptr;
    copy_cap_ = 0;
    copies_up_.clear();
    grp_a_off_.clear();
    std::fill(grp_id_, grp_id_ + NUM_PROJ, 0);
    std::fill(grp_size_, grp_size_ + NUM_PROJ, 0);
    std::fill(grp_pos_, grp_pos_ + NUM_PROJ, 0);
    layout_.reset();
    set_fold_layout();  // the weights keep their strides: the GEMMs read wld()
  }
  const LoraLayout* lora() const override { return layout_.get(); }
  void lora_get(int32_t kind, const std::string& name, float* out, int64_t numel) override {
    device();
    const LoraSpec& s = spec_for(kind, name, numel);
    settle("the reductions of the last backward");
    to_host(out, arena_ + int64_t(kind) * layout_->total + s.offset, size_t(numel) * sizeof(float));
  }
  void lora_set(int32_t kind, const std::string& name, int32_t dtype, const void* data,
                int64_t numel) override {
    device();
    const LoraSpec& s = spec_for(kind, name, numel);
    settle("the reductions of the last backward");
    if (kind == LORA4J_STATE_GRAD) reduced_ = false;
    if (kind == LORA4J_STATE_PARAM) dec_w16_ok_ = false;  // a folded B sits in W's columns
    std::vector<float> f(static_cast<size_t>(numel));
    to_f32(dtype, data, f.data(), numel);
    float* dst = arena_ + int64_t(kind) * layout_->total + s.offset;
    LORA4J_CU(cudaMemcpyAsync(dst, f.data(), size_t(numel) * sizeof(float), cudaMemcpyHostToDevice,
                              stream_));
    if (kind == LORA4J_STATE_PARAM) {
      KCHECK(f32_to_bf16(dst, lora_bf16_ + s.offset, numel, stream_));
      if (s.is_b)
        refresh_fold(s.layer, s.proj);
      else
        refresh_grp_a(s.layer, s.proj);
    }
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }
  int64_t optimizer_step_count() const override { return step_; }
  void set_optimizer_step_count(int64_t step) override { step_ = step; }
  void lora_merge() override {
    device();
    if (!layout_) fail(LORA4J_ESTATE, "lora_merge: no adapter is attached");
    require_weights();
    drop_graphs();
    dec_w16_ok_ = false;
    for (int l = 0; l < shape_.c.num_layers; ++l)
      for (int p = 0; p < NUM_PROJ; ++p) {
        int ia = layout_->index_of(l, p);
        if (ia < 0) continue;
        const LoraSpec& a = layout_->tensors[size_t(ia)];
        const LoraSpec& b = layout_->tensors[size_t(ia) + 1];
        // an NF4 weight becomes bf16 first: merging into 4 bits would lose the adapter
        const int wi = proj_index(l, p);
        set_weight_ld(wi, shape_.proj_in(p));  // the merge kernel reads W contiguous
        if (proj_[size_t(wi)].nf4) {
          bf16* dense = static_cast<bf16*>(
              alloc(size_t(specs_[size_t(wi)].numel()) * sizeof(bf16), "merged weight"));
          KCHECK(nf4_dequantize(proj_[size_t(wi)].p, dense, stream_));
          LORA4J_CU(cudaStreamSynchronize(stream_));
          drop_proj(wi);
          proj_[size_t(wi)].dense = dense;
        }
        KCHECK(lora_merge_weight(proj_[size_t(wi)].dense, arena_ + a.offset, arena_ + b.offset,
                                 layout_->scale, shape_.proj_out(p), shape_.proj_in(p),
                                 layout_->rank, stream_));
      }
    LORA4J_CU(cudaStreamSynchronize(stream_));
    release_unused_nf4_region();
    lora_detach();
    for (int l = 0; l < shape_.c.num_layers; ++l) pack_qkv(l);  // those the merge moved out
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }

  // ---- training --------------------------------------------------------------------------------
  void zero_grad() override {
    device();
    if (!layout_) return;
    settle("the reductions of the last backward");
    reduced_ = false;
    LORA4J_CU(cudaMemsetAsync(arena_ + layout_->total, 0, size_t(layout_->total) * sizeof(float),
                              stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }
  void forward_backward(const lora4j_batch& b, float grad_scale, double* loss_sum,
                        int64_t* tokens) override {
    device();
    const bool reduce = arm_next_ && world_ > 1;  // the arming is for this call only
    arm_next_ = false;
    if (!layout_) fail(LORA4J_ESTATE, "forward_backward: no adapter is attached");
    settle("the reductions of the last backward");
    reduced_ = false;
    prepare(b, true);
    // sized before any capture (forward's own call is then a no-op): a graph never allocates
    if (offload()) ensure_host_checkpoints();
    if (phases_) phases_->start();
    graphed(0, [&] { forward(true); });
    head_loss(grad_scale, true, loss_sum, tokens);
    if (!reduce) {
      graphed(1, [&] { backward(false); });
      LORA4J_CU(cudaStreamSynchronize(stream_));
      if (phases_) phases_->finish();
      return;
    }
    try {
      buckets_ = grad_buckets(*layout_, shape_.c.num_layers, bucket_elems_);
      while (bucket_ready_.size() < buckets_.size()) {
        cudaEvent_t ev = nullptr;
        LORA4J_CU(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
        bucket_ready_.push_back(ev);
      }
      backward(true);
      LORA4J_CU(cudaStreamSynchronize(stream_));
      if (phases_) phases_->finish();
    } catch (...) {
      // some buckets may be queued and others not: the group's collectives are out of step
      abort_comm();
      throw;
    }
    reduced_ = true;
  }
  // One reduction over the flat gradient arena on the device (the default in Engine reads
  // every tensor back to the host). Not finite: NaN.
  double grad_norm() override {
    device();
    if (!layout_) fail(LORA4J_ESTATE, "grad_norm: no adapter is attached");
    settle("the reductions of the last backward");
    double* dsum = static_cast<double*>(scalars_);
    int* dflag = reinterpret_cast<int*>(static_cast<char*>(scalars_) + 8);
    KCHECK(grad_sumsq(arena_ + layout_->total, layout_->total, dsum, dflag, stream_));
    double sum = 0;
    int flag = 0;
    LORA4J_CU(cudaMemcpyAsync(&sum, dsum, sizeof sum, cudaMemcpyDeviceToHost, stream_));
    LORA4J_CU(cudaMemcpyAsync(&flag, dflag, sizeof flag, cudaMemcpyDeviceToHost, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
    return flag ? double(NAN) : std::sqrt(sum);
  }
  void optimizer_step(const lora4j_adamw& o, lora4j_step_result* r) override {
    device();
    if (!layout_) fail(LORA4J_ESTATE, "optimizer_step: no adapter is attached");
    settle("the reductions of the last backward");
    reduced_ = false;
    dec_w16_ok_ = false;  // the folded B columns change
    int64_t n = layout_->total;
    float* p = arena_;
    float* g = arena_ + n;
    float* m = arena_ + 2 * n;
    float* v = arena_ + 3 * n;
    double* dsum = static_cast<double*>(scalars_);
    int* dflag = reinterpret_cast<int*>(static_cast<char*>(scalars_) + 8);
    KCHECK(grad_sumsq(g, n, dsum, dflag, stream_));
    double sum = 0;
    int flag = 0;
    LORA4J_CU(cudaMemcpyAsync(&sum, dsum, sizeof sum, cudaMemcpyDeviceToHost, stream_));
    LORA4J_CU(cudaMemcpyAsync(&flag, dflag, sizeof flag, cudaMemcpyDeviceToHost, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
    double norm = std::sqrt(sum);
    r->grad_norm = norm;
    if (flag || !std::isfinite(norm)) {
      r->applied = 0;
    } else {
      ++step_;
      float mult = 1.f;
      if (o.max_grad_norm > 0) {
        float coef = float(double(o.max_grad_norm) / (norm + 1e-6));
        mult = std::min(coef, 1.f);
      }
      double bc1 = 1.0 - std::pow(double(o.beta1), double(step_));
      double bc2 = 1.0 - std::pow(double(o.beta2), double(step_));
      KCHECK(adamw_update(p, g, m, v, n, mult, o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, bc1,
                          bc2, stream_));
      KCHECK(f32_to_bf16(p, lora_bf16_, n, stream_));
      // the copies of the bf16 parameters into the stacked A matrices, the q/k/v blocks' A rows
      // and the folded weights' B columns: one launch (~420 copies with Mistral-7B's seven
      // targets, whose calls one by one took ~2 ms a step)
      copies_.clear();
      batch_copies_ = copy_table_ != nullptr;
      try {
        for (int l = 0; l < shape_.c.num_layers; ++l)
          for (int q = 0; q < NUM_PROJ; ++q) {
            refresh_grp_a(l, q);
            refresh_fold(l, q);
          }
      } catch (...) {
        batch_copies_ = false;
        throw;
      }
      batch_copies_ = false;
      run_copies();
      r->applied = 1;
    }
    r->step = step_;
    LORA4J_CU(cudaMemsetAsync(g, 0, size_t(n) * sizeof(float), stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }

  // ---- inference ----------------------------------------------------------------------------
  void eval_loss(const lora4j_batch& b, double* loss_sum, int64_t* tokens) override {
    device();
    prepare(b, true);
    forward(false);
    head_loss(0.f, false, loss_sum, tokens);
  }
  void logits(const lora4j_batch& b, float* out) override {
    device();
    prepare(b, false);
    forward(false);
    const int64_t V = shape_.c.vocab_size, d = shape_.c.hidden_size;
    // fp32 logits, as many tokens at a time as the loss path's scratch holds in fp32
    const int64_t chunk = std::max<int64_t>(1, logits_floats_ / V);
    for (int64_t c0 = 0; c0 < n_; c0 += chunk) {
      int64_t c = std::min(chunk, n_ - c0);
      gemm_.run(false, true, c, V, d, hn_ + c0 * d, d, wlm(), d, logits_, true, V, 1.f, 0.f,
                "lm_head");
      LORA4J_CU(cudaMemcpyAsync(out + c0 * V, logits_, size_t(c * V) * sizeof(float),
                                cudaMemcpyDeviceToHost, stream_));
      LORA4J_CU(cudaStreamSynchronize(stream_));
    }
  }
  void hidden_states(const lora4j_batch& b, float* out) override {
    device();
    prepare(b, false);
    forward(false, out);
    const int64_t d = shape_.c.hidden_size, L = shape_.c.num_layers;
    KCHECK(bf16_to_f32(hn_, dtmp_, n_ * d, stream_));
    LORA4J_CU(cudaMemcpyAsync(out + L * n_ * d, dtmp_, size_t(n_ * d) * sizeof(float),
                              cudaMemcpyDeviceToHost, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }
  void decode_start(const int32_t* prompt, int32_t length, float* logits) override {
    device();
    require_weights();
    ensure_cache();
    build_decode_w16();
    std::vector<int32_t> pos(static_cast<size_t>(length));
    for (int32_t i = 0; i < length; ++i) pos[size_t(i)] = i;
    decode_run(prompt, pos.data(), length, 0, logits);
    cache_len_ = length;
  }
  void decode_next(int32_t token, float* logits) override {
    device();
    if (cache_len_ <= 0) fail(LORA4J_ESTATE, "decode_next before decode_start");
    check_arg(cache_len_ < shape_.c.max_seq_len,
              "the KV cache is full (max_seq_len " + std::to_string(shape_.c.max_seq_len) + ")");
    int32_t pos = cache_len_;
    decode_run(&token, &pos, 1, cache_len_, logits);
    cache_len_ += 1;
  }

  // ---- worker rows of robust aggregation, on the device (issue 14) ---------------------------
  // The rows live beside the arena; gather copies (a group: all-gathers) the accumulated
  // gradients into them device to device, and the rule's kernels write the arena directly.
  void workers_reserve(int32_t rows) override {
    device();
    check_arg(rows >= 0 && rows <= LORA4J_MAX_WORKERS, "worker rows must be in [0, " +
                                                           std::to_string(LORA4J_MAX_WORKERS) +
                                                           "], got " + std::to_string(rows));
    const size_t bytes = rows > 0 ? size_t(rows) * size_t(grad_numel()) * sizeof(float) : 0;
    if (bytes == 0 || bytes > dev_workers_bytes_) {
      free_dev(dev_workers_);
      dev_workers_ = nullptr;
      dev_workers_bytes_ = 0;
      worker_capacity_ = 0;
      if (bytes > 0) {
        dev_workers_ = static_cast<float*>(alloc(bytes, "worker gradients"));
        dev_workers_bytes_ = bytes;
      }
    }
    worker_capacity_ = rows;
    dev_workers_numel_ = rows > 0 ? grad_numel() : 0;
  }
  void workers_gather(int32_t first) override {
    device();
    float* dst = worker_row(first, world_);
    const float* g = arena_ + layout_->total;
    const size_t numel = size_t(layout_->total);
    if (world_ == 1) {
      LORA4J_CU(cudaMemcpyAsync(dst, g, numel * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
      return;
    }
    nccl_check(nccl::api().ncclAllGather(g, dst, numel, nccl::kFloat32, comm_, stream_),
               "ncclAllGather of the worker gradients");
    wait_collective("the all-gather of the worker gradients");
  }
  void workers_read(int32_t first, int32_t count, float* out) override {
    device();
    const float* src = worker_row(first, count);
    to_host(out, src, size_t(count) * size_t(layout_->total) * sizeof(float));
  }
  void workers_write(int32_t first, int32_t count, const float* data) override {
    device();
    float* dst = worker_row(first, count);
    to_device(dst, data, size_t(count) * size_t(layout_->total) * sizeof(float));
  }
  int32_t workers_aggregate(int32_t rule, int32_t f, int32_t n, const float* weights) override {
    device();
    const float* rows = worker_row(0, n);
    const int64_t numel = layout_->total;
    const size_t ws = aggregate_workspace_bytes(rule, n, numel);
    if (ws > agg_ws_bytes_) {
      free_dev(agg_ws_);
      agg_ws_ = nullptr;
      agg_ws_bytes_ = 0;
      agg_ws_ = alloc(ws, "aggregation workspace");
      agg_ws_bytes_ = ws;
    }
    int32_t selected = -1, nonfinite = 0;
    KCHECK(aggregate_rows(rule, f, n, numel, rows, weights, arena_ + numel, agg_ws_, &selected,
                          &nonfinite, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
    if (rule != LORA4J_AGG_MEAN && agg::f_after_nonfinite(rule, f, n, nonfinite) < 0)
      fail(LORA4J_EFAULTY, agg::nonfinite_refusal(rule, f, n, nonfinite));
    return selected;
  }

  // ---- the gradients as one buffer, collectives over NCCL (issue 14) -------------------------
  void grad_get_flat(float* out, int64_t numel) override {
    device();
    check_flat(numel);
    settle("the reductions of the last backward");
    to_host(out, arena_ + layout_->total, size_t(numel) * sizeof(float));
  }
  void grad_set_flat(const float* data, int64_t numel) override {
    device();
    check_flat(numel);
    settle("the reductions of the last backward");
    reduced_ = false;
    to_device(arena_ + layout_->total, data, size_t(numel) * sizeof(float));
  }
  // A group of one needs no communicator; larger groups join an NCCL communicator on this
  // engine's device (ncclCommInitRank returns when every rank has joined).
  void dist_init(const uint8_t* id, int32_t, int32_t world, int32_t rank) override {
    device();
    check_arg(comm_ == nullptr, "dist_init: the engine is already in a group of " +
                                    std::to_string(world_) + " ranks");
    if (world == 1) return;
    const nccl::Api& a = nccl::api();
    nccl::UniqueId uid;
    std::memcpy(uid.internal, id, sizeof uid.internal);
    nccl::Comm c = nullptr;
    nccl::Result r = a.ncclCommInitRank(&c, world, uid, rank);
    if (r != nccl::kSuccess) {
      fail(LORA4J_EDEVICE, "ncclCommInitRank (rank " + std::to_string(rank) + " of " +
                               std::to_string(world) + ") failed: " + a.ncclGetErrorString(r) +
                               " (" + a.ncclGetLastError(nullptr) + ")");
    }
    comm_ = c;
    world_ = world;
    rank_ = rank;
    // the stream of the reductions overlapped with the backward, at the highest priority so
    // that NCCL's kernels get SMs while the backward's fill the device
    if (!comm_stream_) {
      int least = 0, greatest = 0;
      LORA4J_CU(cudaDeviceGetStreamPriorityRange(&least, &greatest));
      LORA4J_CU(cudaStreamCreateWithPriority(&comm_stream_, cudaStreamNonBlocking, greatest));
      LORA4J_CU(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming));
    }
    // Every rank must cut the same buckets (the same collectives in the same order): the
    // setting is summed over the group, with its square, and equal sums mean equal settings. A
    // rank with an unreadable setting takes part with -1, so that every rank fails at once.
    std::string bad;
    const int64_t kib = bucket_kib_setting(&bad);
    double v[2] = {double(kib), double(kib) * double(kib)};
    dist_allreduce_f64(v, 2);
    if (!bad.empty()) {
      abort_comm();
      fail(LORA4J_EINVAL, bad);
    }
    if (v[0] != double(world) * double(kib) || v[1] != double(world) * double(kib) * double(kib)) {
      abort_comm();
      fail(LORA4J_EINVAL, "LORA4J_DIST_BUCKET_MB differs between the ranks of the group (rank " +
                              std::to_string(rank) + " has " + std::to_string(double(kib) / 1024) +
                              " MiB): set the same value for every rank");
    }
    bucket_elems_ = kib * 1024 / int64_t(sizeof(float));
  }
  // Overlapped reduction (lora4j_dist_reduce_in_backward): the next forward_backward only.
  void dist_reduce_in_backward(bool on) override {
    device();
    arm_next_ = on && world_ > 1;  // a group of one has nothing to reduce
  }
  void dist_allreduce_grad() override {
    device();
    check_not_aborted("the all-reduce of the gradients");
    if (!layout_) fail(LORA4J_ESTATE, "dist_allreduce_grad: no adapter is attached");
    if (world_ == 1) return;
    if (reduced_) {  // an armed backward queued the reductions: wait for them
      settle("the all-reduce of the gradients");
      reduced_ = false;
      return;
    }
    float* g = arena_ + layout_->total;
    nccl_check(nccl::api().ncclAllReduce(g, g, size_t(layout_->total), nccl::kFloat32, nccl::kSum,
                                         comm_, stream_),
               "ncclAllReduce of the gradients");
    wait_collective("the all-reduce of the gradients");
  }
  void dist_allgather_grad(float* out, int64_t numel) override {
    device();
    check_not_aborted("the all-gather of the gradients");
    check_flat(numel);
    if (world_ == 1) {
      grad_get_flat(out, numel);
      return;
    }
    settle("the reductions of the last backward");
    const size_t bytes = size_t(world_) * size_t(numel) * sizeof(float);
    if (gathered_bytes_ < bytes) {
      free_dev(gathered_);
      gathered_ = nullptr;
      gathered_bytes_ = 0;
      gathered_ = static_cast<float*>(alloc(bytes, "gathered worker gradients"));
      gathered_bytes_ = bytes;
    }
    nccl_check(nccl::api().ncclAllGather(arena_ + layout_->total, gathered_, size_t(numel),
                                         nccl::kFloat32, comm_, stream_),
               "ncclAllGather of the gradients");
    wait_collective("the all-gather of the gradients");
    to_host(out, gathered_, bytes);
  }
  void dist_allreduce_f64(double* values, int32_t count) override {
    device();
    check_not_aborted("the all-reduce of the step's sums");
    if (world_ == 1 || count == 0) return;
    const size_t bytes = size_t(count) * sizeof(double);
    if (f64_bytes_ < bytes) {
      free_dev(f64_);
      f64_ = nullptr;
      f64_bytes_ = 0;
      f64_ = static_cast<double*>(alloc(bytes, "all-reduce scalars"));
      f64_bytes_ = bytes;
    }
    LORA4J_CU(cudaMemcpyAsync(f64_, values, bytes, cudaMemcpyHostToDevice, stream_));
    // after the reductions an armed backward queued (the same order on every rank)
    if (in_flight_) LORA4J_CU(cudaStreamWaitEvent(stream_, comm_done_, 0));
    nccl_check(nccl::api().ncclAllReduce(f64_, f64_, size_t(count), nccl::kFloat64, nccl::kSum,
                                         comm_, stream_),
               "ncclAllReduce of the step's sums");
    wait_collective("the all-reduce of the step's sums");
    to_host(values, f64_, bytes);
  }

 private:
  // Row `first` of the device worker rows after checking that rows first .. first + count - 1
  // are reserved for the attached adapter.
  float* worker_row(int32_t first, int32_t count) {
    if (!layout_) fail(LORA4J_ESTATE, "no adapter is attached");
    check_worker_rows(worker_capacity_, first, count);
    if (dev_workers_numel_ != layout_->total) {
      fail(LORA4J_ESTATE,
           "the worker rows were reserved for another adapter; call "
           "lora4j_workers_reserve again");
    }
    return dev_workers_ + size_t(first) * size_t(layout_->total);
  }
  void check_flat(int64_t numel) {
    if (!layout_) fail(LORA4J_ESTATE, "no adapter is attached");
    check_arg(numel == layout_->total,
              "numel " + std::to_string(numel) + " differs from the gradient arena's " +
                  std::to_string(layout_->total) + " elements (lora4j_grad_flat_numel)");
  }
  void nccl_check(nccl::Result r, const char* what) {
    if (r == nccl::kSuccess || r == nccl::kInProgress) return;
    const nccl::Api& a = nccl::api();
    std::string msg = std::string(what) + " failed on rank " + std::to_string(rank_) + ": " +
                      a.ncclGetErrorString(r) + " (" + a.ncclGetLastError(comm_) + ")";
    abort_comm();
    fail(LORA4J_EDEVICE, msg);
  }
  // Waits for the collective queued on stream_ without blocking inside NCCL: polls the stream
  // and the communicator's asynchronous error, so that a lost peer (NCCL reports a remote or
  // system error) or a collective that never completes (LORA4J_DIST_TIMEOUT_S seconds, default
  // 600) aborts the communicator and comes back as an error instead of a hang. also (nullable):
  // a second stream waited for as well (comm_stream_, the overlapped reductions).
  void wait_collective(const char* what, cudaStream_t also = nullptr) {
    const nccl::Api& a = nccl::api();
    double limit = 600;
    if (const char* t = std::getenv("LORA4J_DIST_TIMEOUT_S")) {
      double v = std::atof(t);
      if (v > 0) limit = v;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess && also) q = cudaStreamQuery(also);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) LORA4J_CU(q);
      if (abort_requested()) {
        // lora4j_dist_abort from another thread: a peer is known lost outside NCCL (the
        // collective may never see it, e.g. over P2P or shared memory).
        std::string msg = std::string(what) + " aborted on rank " + std::to_string(rank_) + " of " +
                          std::to_string(world_) + ": " + abort_reason();
        abort_comm();
        fail(LORA4J_EDEVICE, msg);
      }
      nccl::Result ae = nccl::kSuccess;
      nccl::Result r = a.ncclCommGetAsyncError(comm_, &ae);
      if (r != nccl::kSuccess || (ae != nccl::kSuccess && ae != nccl::kInProgress)) {
        nccl::Result bad = r != nccl::kSuccess ? r : ae;
        std::string msg = std::string(what) + " failed on rank " + std::to_string(rank_) + " of " +
                          std::to_string(world_) + ": " + a.ncclGetErrorString(bad) + " (" +
                          a.ncclGetLastError(comm_) + "); another rank was probably lost";
        abort_comm();
        fail(LORA4J_EDEVICE, msg);
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (secs > limit) {
        abort_comm();
        fail(LORA4J_EDEVICE,
             std::string(what) + " did not complete in " + std::to_string(int(limit)) +
                 " s on rank " + std::to_string(rank_) + " of " + std::to_string(world_) +
                 ": a rank is lost or stalled (LORA4J_DIST_TIMEOUT_S sets the limit)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  // After an abort the engine is alone again; its stream may hold the aborted collective.
  void abort_comm() noexcept {
    if (!comm_) return;
    nccl::api().ncclCommAbort(comm_);
    comm_ = nullptr;
    world_ = 1;
    rank_ = 0;
    arm_next_ = in_flight_ = reduced_ = false;
  }
  // Waits until the reductions queued by an armed backward are complete (as wait_collective:
  // polled, with the lost-peer and timeout handling) and orders stream_ after them. Every use of
  // the gradient arena calls it first.
  void settle(const char* what) {
    if (!in_flight_) return;
    wait_collective(what, comm_stream_);
    LORA4J_CU(cudaStreamWaitEvent(stream_, comm_done_, 0));
    in_flight_ = false;
  }
  // LORA4J_DIST_BUCKET_MB in KiB: the size of the overlapped reductions' buckets (default 25
  // MiB, 0: one bucket per layer); -1 with the reason in *bad when it is not such a number.
  static int64_t bucket_kib_setting(std::string* bad) {
    const char* t = std::getenv("LORA4J_DIST_BUCKET_MB");
    if (!t || !*t) return 25 * 1024;
    char* end = nullptr;
    double mb = std::strtod(t, &end);
    if (end == t || *end != '\0' || !(mb >= 0) || mb > 4096) {
      *bad = std::string(
                 "LORA4J_DIST_BUCKET_MB must be a number of MiB from 0 to 4096 (0: one "
                 "bucket per layer), got '") +
             t + "'";
      return -1;
    }
    return int64_t(std::llround(mb * 1024));
  }
  // Queues the all-reduce of every bucket that is final once the backward has finished `layer`
  // (-1: after the whole backward, every bucket left): an event on stream_, comm_stream_ waits
  // for it, NCCL reduces the bucket in place on comm_stream_.
  void reduce_buckets(int layer, size_t* next) {
    for (; *next < buckets_.size() && (layer < 0 || buckets_[*next].ready_after == layer);
         ++*next) {
      const GradBucket& k = buckets_[*next];
      cudaEvent_t ev = bucket_ready_[*next];
      LORA4J_CU(cudaEventRecord(ev, stream_));
      LORA4J_CU(cudaStreamWaitEvent(comm_stream_, ev, 0));
      float* g = arena_ + layout_->total + k.begin;
      in_flight_ = true;
      nccl_check(nccl::api().ncclAllReduce(g, g, size_t(k.end - k.begin), nccl::kFloat32,
                                           nccl::kSum, comm_, comm_stream_),
                 "ncclAllReduce of a gradient bucket");
    }
    if (layer < 0 && in_flight_) LORA4J_CU(cudaEventRecord(comm_done_, comm_stream_));
  }

  // ---- memory ------------------------------------------------------------------------------
  void* alloc(size_t bytes, const char* what) {
    void* p = nullptr;
    const cudaError_t e = try_alloc(bytes, &p);
    if (e != cudaSuccess)
      fail(e == cudaErrorMemoryAllocation ? LORA4J_ENOMEM : LORA4J_EDEVICE,
           std::string("cudaMalloc of ") + std::to_string(bytes) + " bytes for " + what +
               " failed: " + cudaGetErrorString(e));
    return p;
  }
  // alloc's allocation and accounting, its error returned (and cleared) instead of thrown: for
  // buffers that only save time, whose absence the caller handles
  cudaError_t try_alloc(size_t bytes, void** p) {
    drop_graphs();  // a graph's pointers are the allocations' of its capture
    *p = nullptr;
    const cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      *p = nullptr;
      return e;
    }
    sizes_[*p] = bytes;
    in_use_ += int64_t(bytes);
    peak_ = std::max(peak_, in_use_);
    return cudaSuccess;
  }
  void free_dev(void* p) {
    if (!p) return;
    drop_graphs();
    auto it = sizes_.find(p);
    if (it != sizes_.end()) {
      in_use_ -= int64_t(it->second);
      sizes_.erase(it);
    }
    cudaFree(p);
  }
  void release() noexcept {
    if (dev_ >= 0) cudaSetDevice(dev_);
    phases_.reset();  // writes the LORA4J_PHASE_TIMES lines while the stream exists
    graphs_.write_stats(graph_stats_path_, int(graph_mode_));
    graphs_.clear();  // a graph still running is freed when it completes
    if (comm_) {
      // reductions still queued may wait for peers that will not come: abort, not destroy
      if (in_flight_)
        nccl::api().ncclCommAbort(comm_);
      else
        nccl::api().ncclCommDestroy(comm_);
      comm_ = nullptr;
    }
    if (comm_stream_) cudaStreamSynchronize(comm_stream_);
    for (cudaEvent_t ev : bucket_ready_) cudaEventDestroy(ev);
    bucket_ready_.clear();
    if (comm_done_) cudaEventDestroy(comm_done_);
    comm_done_ = nullptr;
    if (comm_stream_) cudaStreamDestroy(comm_stream_);
    comm_stream_ = nullptr;
    if (stream_) cudaStreamSynchronize(stream_);
    if (loss_stream_) cudaStreamSynchronize(loss_stream_);
    if (copy_stream_) cudaStreamSynchronize(copy_stream_);
    for (int i = 0; i < 2; ++i) {
      for (cudaEvent_t* ev : {&ck_filled_[i], &ck_moved_[i], &ck_done_[i]})
        if (*ev) cudaEventDestroy(*ev), *ev = nullptr;
    }
    if (ck_joined_) cudaEventDestroy(ck_joined_);
    ck_joined_ = nullptr;
    if (copy_stream_) cudaStreamDestroy(copy_stream_);
    copy_stream_ = nullptr;
    if (host_ck_) cudaFreeHost(host_ck_);
    host_ck_ = nullptr;
    host_ck_bytes_ = 0;
    std::vector<void*> all;
    for (auto& kv : sizes_) all.push_back(kv.first);
    for (void* p : all) free_dev(p);
    arena_ = nullptr;
    lora_bf16_ = nullptr;
    grp_a_ = nullptr;
    copy_table_ = nullptr;
    copy_cap_ = 0;
    nf4_region_ = nullptr;
    if (stream_) cudaStreamDestroy(stream_);
    stream_ = nullptr;
    if (loss_stream_) cudaStreamDestroy(loss_stream_);
    loss_stream_ = nullptr;
  }
  void device() { LORA4J_CU(cudaSetDevice(dev_)); }

  // Host <-> device copies of the engine's own tensors go through stream_ and return when they
  // are complete. A plain cudaMemcpy is not enough: from pageable memory it may return before
  // the DMA has landed, and stream_ is non-blocking (it does not wait for the legacy stream), so
  // a kernel queued next could read a half-written tensor. That race left the tail of large
  // LoRA factors (the 14336-wide ones) stale in their bf16 copies and the last frozen weights
  // half-uploaded at the first step (issue 10).
  void to_device(void* dst, const void* src, size_t bytes) {
    LORA4J_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }
  void to_host(void* dst, const void* src, size_t bytes) {
    LORA4J_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }

  static uint16_t f32_to_bf16_host(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFFu)) return uint16_t((x >> 16) | 0x40);
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7FFFu + lsb;
    return uint16_t(x >> 16);
  }

  int widx(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) fail(LORA4J_EINVAL, "no frozen weight named '" + name + "'");
    return it->second;
  }
  const LoraSpec& spec_for(int32_t kind, const std::string& name, int64_t numel) const {
    if (!layout_) fail(LORA4J_ESTATE, "no adapter is attached");
    check_arg(kind >= 0 && kind <= 3, "state kind must be 0..3, got " + std::to_string(kind));
    const LoraSpec& s = layout_->find(name);
    check_arg(numel == s.numel(), "LoRA tensor '" + name + "' has " + std::to_string(s.numel()) +
                                      " elements, got " + std::to_string(numel));
    return s;
  }
  void require_weights() {
    for (size_t i = 0; i < specs_.size(); ++i)
      if (!wset_[i]) fail(LORA4J_ESTATE, "frozen weight '" + specs_[i].name + "' was never set");
    if (!attention_supports(shape_.c.head_dim))
      fail(LORA4J_EUNSUPPORTED,
           "the CUDA attention kernels support head_dim 16, 32, 64, 128; "
           "got " +
               std::to_string(shape_.c.head_dim));
  }

  // weight pointers: index = 1 + l * 9 + {0 norm1, 1..7 proj, 8 norm2}
  bf16* wptr(int i) { return weights_ + woff_[size_t(i)]; }
  bf16* wembed() { return wptr(0); }
  bf16* wnorm1(int l) { return wptr(1 + l * 9); }
  int proj_index(int l, int p) const { return 1 + l * 9 + 1 + p; }
  bool is_proj(int i) const { return specs_[size_t(i)].slot < NUM_PROJ; }
  // The bf16 operand of a GEMM with projection (l, p): the weight itself, or for an NF4 weight
  // the scratch buffer, dequantized into unless it holds that weight already (the forward's
  // x and x_lo GEMMs read one weight back to back). All on stream_, so the next dequantization
  // is ordered after every GEMM queued before it.
  const bf16* wproj(int l, int p) { return gemm_weight(proj_index(l, p)); }
  const bf16* gemm_weight(int i) {
    ProjWeight& pw = proj_[size_t(i)];
    if (pw.dense) return pw.dense;
    if (scratch_holds_ != i) {
      KCHECK(nf4_dequantize(pw.p, scratch_, stream_));
      scratch_holds_ = i;
    }
    return scratch_;
  }
  // The bf16 storage of projection i (allocated on first use; an NF4 form is dropped).
  bf16* dense_proj(int i) {
    ProjWeight& pw = proj_[size_t(i)];
    if (!pw.dense) {
      bf16* d = static_cast<bf16*>(
          alloc(size_t(specs_[size_t(i)].numel()) * sizeof(bf16), specs_[size_t(i)].name.c_str()));
      drop_proj(i);
      pw.dense = d;
      release_unused_nf4_region();
    }
    return pw.dense;
  }
  // Frees projection i's storage, either form (an NF4 slot of the region is only given up: the
  // region goes when no projection uses it, release_unused_nf4_region).
  void drop_proj(int i) {
    ProjWeight& pw = proj_[size_t(i)];
    if (pw.in_block) unpack_qkv(layer_of(i));
    if (pw.dense) free_dev(pw.dense);
    if (pw.nf4 && !pw.in_region) free_dev(pw.nf4);
    if (pw.nf4 && pw.in_region) --nf4_region_users_;
    pw = ProjWeight{};
    if (scratch_holds_ == i) scratch_holds_ = -1;
  }
  bf16* wnorm2(int l) { return wptr(1 + l * 9 + 8); }
  bf16* wfinal() { return wptr(1 + shape_.c.num_layers * 9); }
  bf16* wlm() { return wptr(2 + shape_.c.num_layers * 9); }

  // ---- activations ----------------------------------------------------------------------------
  struct Carver {
    char* base;
    size_t off = 0;
    template <class T>
    T* take(int64_t n) {
      size_t at = (off + 255) / 256 * 256;
      off = at + size_t(n) * sizeof(T);
      return base ? reinterpret_cast<T*>(base + at) : nullptr;
    }
  };
  // The device layout of an NF4 weight: codes, code table, then the plain scales or the
  // double-quantized ones (codes, nested table, nested absmax), each 256-byte aligned.
  static void nf4_layout(Carver& k, const lora4j_nf4_weight& w, Nf4Params& p) {
    const int64_t blocks = nf4_blocks(w);
    p.codes = k.take<uint8_t>(nf4_code_bytes(w.numel));
    p.code_table = k.take<float>(16);
    if (w.absmax) {
      p.absmax = k.take<float>(blocks);
    } else {
      p.absmax_codes = k.take<uint8_t>(blocks);
      p.nested_table = k.take<float>(256);
      p.nested_absmax = k.take<float>(nf4_nested_blocks(w));
    }
  }
  static size_t nf4_bytes(const lora4j_nf4_weight& w) {
    Carver c{nullptr};
    Nf4Params p;
    nf4_layout(c, w, p);
    return c.off;
  }
  // One allocation for the NF4 form of every projection not yet set as bf16, each at its own
  // offset, sized for the form of the first NF4 weight (blocksize, nested blocksize, double
  // quantization or not), reserved when that weight comes. Separate allocations lose about
  // 1 MiB each to the allocator's 2 MiB pages: 224 of them, 0.33 GiB for Mistral-7B, that
  // nvidia-smi sees and the engine's count does not. A weight that does not fit its slot
  // (another form) gets an allocation of its own.
  void reserve_nf4_region(const lora4j_nf4_weight& first) {
    std::vector<size_t> off(specs_.size(), 0), size(specs_.size(), 0);
    size_t total = 0;
    for (size_t j = 0; j < specs_.size(); ++j) {
      if (!is_proj(int(j)) || proj_[j].dense) continue;
      lora4j_nf4_weight form = first;
      form.numel = specs_[j].numel();
      off[j] = total;
      size[j] = nf4_bytes(form);
      total += (size[j] + 255) / 256 * 256;
    }
    // nothing to reserve when every projection is bf16 already: the weight gets its own
    if (total > 0) nf4_region_ = static_cast<char*>(alloc(total, "NF4 weights (every projection)"));
    nf4_slot_off_ = std::move(off);
    nf4_slot_size_ = std::move(size);
    nf4_region_users_ = 0;
  }
  void release_unused_nf4_region() {
    if (!nf4_region_ || nf4_region_users_ > 0) return;
    free_dev(nf4_region_);
    nf4_region_ = nullptr;
    nf4_slot_off_.clear();
    nf4_slot_size_.clear();
  }
  // Lays out the activation arena for B x S tokens; with base null only measures it.
  size_t carve(char* base, int64_t B, int64_t S) {
    const ModelShape& s = shape_;
    const int64_t n = B * S, d = s.c.hidden_size, qd = s.q_dim(), kvd = s.kv_dim(),
                  I = s.c.intermediate_size, L = s.c.num_layers, H = s.c.num_heads,
                  V = s.c.vocab_size, r = layout_ ? layout_->rank : 0;
    Carver c{base};
    int sets = opt_.recompute == LORA4J_RECOMPUTE_NONE ? int(L) : 1;
    acts_.assign(size_t(sets), LayerActs{});
    for (int i = 0; i < sets; ++i) {
      LayerActs& a = acts_[size_t(i)];
      a.xn1 = c.take<bf16>(n * xld_[kGroupOf[Q]]);  // [xn1 | xa of q, k, v] when they fold
      a.rstd1 = c.take<float>(n);
      a.q = c.take<f16>(n * qd);
      a.k = c.take<f16>(n * kvd);
      a.v = c.take<bf16>(n * kvd);
      a.att = c.take<bf16>(n * qd);
      a.lse = c.take<float>(B * H * S);
      a.att32 = attn_o_bf16_ ? nullptr : c.take<float>(n * qd);
      a.xmid = take_res(c, n * d);
      a.xn2 = c.take<bf16>(n * xld_[kGroupOf[GATE]]);  // [xn2 | xa of gate, up] likewise
      a.rstd2 = c.take<float>(n);
      a.gate = c.take<bf16>(n * I);
      a.up = c.take<bf16>(n * I);
      a.h = c.take<bf16>(n * I);
      // the LoRA inputs x A^T of a group side by side: [n, members x r], member j at column j r
      for (int p = 0; p < NUM_PROJ; ++p) a.xa[p] = nullptr;
      for (int p = 0; r && p < NUM_PROJ; ++p) {
        const int g = kGroupOf[p];
        if ((layout_->targets & (1u << p)) && xa_in_x(g)) {  // in x's spare columns
          a.xa[p] = (g == kGroupOf[Q] ? a.xn1 : a.xn2) + shape_.proj_in(p) + fold_pos_[p] * r;
          continue;
        }
        if ((layout_->targets & (1u << p)) && grp_pos_[p] == 0) {
          bf16* base = c.take<bf16>(n * r * grp_size_[p]);
          for (int q = p; q < NUM_PROJ; ++q)
            if (grp_id_[q] == grp_id_[p] && (layout_->targets & (1u << q)))
              a.xa[q] = base + int64_t(grp_pos_[q]) * r;
        }
      }
    }
    // The residual stream (fp32; bf16 with res16_). Without recompute every layer input is kept
    // for the backward. With recompute, two buffers alternate (x_[l] = buffer l % 2) and each
    // layer input is checkpointed in bf16 (xck_[l]), as the reference stack's checkpointing
    // keeps it: half the bytes; the backward recomputes layer l from bf16(x_l) (the forward
    // itself keeps the stream's own type).
    x_.assign(size_t(L + 1), nullptr);
    xck_.assign(size_t(L), nullptr);
    if (opt_.recompute == LORA4J_RECOMPUTE_NONE) {
      for (int64_t l = 0; l <= L; ++l) x_[size_t(l)] = take_res(c, n * d);
    } else {
      void* buf[2] = {take_res(c, n * d), take_res(c, n * d)};
      for (int64_t l = 0; l <= L; ++l) x_[size_t(l)] = buf[l % 2];
      // offloaded: two device slots (layer l in slot l % 2), the layers themselves on the host
      if (offload()) {
        bf16* slot[2] = {c.take<bf16>(n * d), c.take<bf16>(n * d)};
        for (int64_t l = 0; l < L; ++l) xck_[size_t(l)] = slot[l % 2];
      } else {
        for (int64_t l = 0; l < L; ++l) xck_[size_t(l)] = c.take<bf16>(n * d);
      }
    }
    // RECOMPUTE_SELECTIVE and _ATTENTION: each layer's attention output (bf16) and log-sum-exp
    // are kept too, so the backward's re-run skips the attention forward; its delta =
    // rowsum(dO * O) then comes from the bf16 output (no fp32 copy kept). RECOMPUTE_ATTENTION
    // also keeps the rotated q, k and v, so the re-run skips their projections and RoPE. Offloaded:
    // two device slots, layer l in slot l % 2. The shared set's own buffers serve evaluation.
    attck_.assign(size_t(L), nullptr);
    lseck_.assign(size_t(L), nullptr);
    qck_.assign(size_t(L), nullptr);
    kck_.assign(size_t(L), nullptr);
    vck_.assign(size_t(L), nullptr);
    for (int64_t l = 0; l < L; ++l) {
      if (offload() && l >= 2) {
        attck_[size_t(l)] = attck_[size_t(l) % 2];
        lseck_[size_t(l)] = lseck_[size_t(l) % 2];
        qck_[size_t(l)] = qck_[size_t(l) % 2];
        kck_[size_t(l)] = kck_[size_t(l) % 2];
        vck_[size_t(l)] = vck_[size_t(l) % 2];
        continue;
      }
      if (keeps_attention()) {
        attck_[size_t(l)] = c.take<bf16>(n * qd);
        lseck_[size_t(l)] = c.take<float>(B * H * S);
      }
      if (opt_.recompute == LORA4J_RECOMPUTE_ATTENTION) {
        qck_[size_t(l)] = c.take<f16>(n * qd);
        kck_[size_t(l)] = c.take<f16>(n * kvd);
        vck_[size_t(l)] = c.take<bf16>(n * kvd);
      }
    }
    shared_att_ = acts_[0].att;
    shared_lse_ = acts_[0].lse;
    shared_att32_ = acts_[0].att32;
    shared_q_ = acts_[0].q;
    shared_k_ = acts_[0].k;
    shared_v_ = acts_[0].v;
    hn_ = c.take<bf16>(n * d);
    if (qk_f16_) {
      xf16_ = c.take<f16>(n * xld_[kGroupOf[Q]]);  // xn1's row stride
      // q's or k's weight in fp16, its row stride at most the group's (its B columns, folded)
      wf16_ = c.take<f16>(std::max(qd, kvd) * xld_[kGroupOf[Q]]);
    }
    if (qk_lo_e4m3_)
      xlo8_ = c.take<uint8_t>(n * d);
    else
      xlo_ = c.take<bf16>(n * xld_[kGroupOf[Q]]);  // xn1's row stride
    rstdf_ = c.take<float>(n);
    int64_t wide = std::max(std::max(d, I), qd);
    dres_ = c.take<float>(n * d);
    dy_ = c.take<bf16>(n * wide);
    dtmp_ = c.take<float>(n * wide);
    datt_ = c.take<bf16>(n * qd);
    // q, k and v's output gradients and the group's s (dy B) side by side (qkv_dx)
    if (qkv_dx_fold_) {
      const int64_t kc = qd + 2 * kvd + 3 * std::max<int64_t>(r, 0);  // the fold's K at most
      dqkv_ = c.take<bf16>(n * kc);
      wqkv_ = c.take<bf16>(kc * d);  // the stacked weights' [out, in] parts, A_g after them
    }
    if (qkv_dx_fold_ && qkv_direct_) {
      // a layer that does not fold writes its gradients side by side in dqkv_'s space, each
      // with rows of its own width (no layer uses both forms at once)
      dq_ = dqkv_;
      dk_ = dqkv_ ? dqkv_ + n * qd : nullptr;
      dv_ = dqkv_ ? dk_ + n * kvd : nullptr;
    } else {
      dq_ = c.take<bf16>(n * qd);
      dk_ = c.take<bf16>(n * kvd);
      dv_ = c.take<bf16>(n * kvd);
    }
    dq_acc_ = c.take<float>(n * qd);
    delta_ = c.take<float>(B * H * S);
    int widest = 1;  // t_ holds (dy B) of a whole group side by side, like xa
    for (int p = 0; p < NUM_PROJ; ++p) widest = std::max(widest, grp_size_[p]);
    t_ = c.take<bf16>(n * std::max<int64_t>(r, 1) * widest);
    size_t dyp = 0;
    dy_pair_slots_ = 0;
    if (lora_dy_pair_ && (r == 8 || r == 16 || r == 32) &&
        lora_dy_pair_smem_bytes(int(r)) <= smem_optin_)
      dy_pair_slots_ = lora_dy_pair_slots(int(r), dev_);
    if (dy_slots_env_ > 0 && dy_pair_slots_ > 0) dy_pair_slots_ = dy_slots_env_;
    if (dy_pair_slots_ > 0) {
      for (int p = 0; p < NUM_PROJ; ++p)
        dyp = std::max(dyp,
                       lora_dy_pair_scratch_floats(n, shape_.proj_out(p), int(r), dy_pair_slots_));
      if (qkv_pair_one_) {  // q, k and v's passes in one launch (qkv_pair)
        const int64_t O[3] = {qd, kvd, kvd};
        dyp = std::max(dyp, lora_dy_pair_multi_scratch_floats(n, O, 3, int(r), dy_pair_slots_));
      }
    }
    dy_pair_ = dyp ? c.take<float>(int64_t(dyp)) : nullptr;
    // a group's dLoRA_A, [members x r, in] fp32, before it is added onto each member's gradient
    int64_t gda = 0;
    if (lora_group_da_)
      for (int p = 0; p < NUM_PROJ; ++p)
        if (grp_size_[p] >= 2) gda = std::max(gda, t_ld(p) * shape_.proj_in(p));
    group_da_ = gda ? c.take<float>(gda) : nullptr;
    // the logits of a chunk (bf16 unless LORA4J_LM_HEAD_LOGITS=fp32; their bf16 gradients
    // overwrite them), two scratches so one chunk's loss kernel runs beside the next chunk's
    // GEMM: see lm_head.h. The first holds at least one token's fp32 logits (generation's).
    lm_bf16_ = lm_head_bf16_logits();
    const int64_t elem = lm_bf16_ ? 2 : 4;
    chunk_ = lm_head_chunk_tokens(n, V, elem);
    logits_floats_ = std::max<int64_t>(V, lm_head_scratch_floats(chunk_, V, elem));
    logits_ = c.take<float>(logits_floats_);
    logits2_ = n > chunk_ ? c.take<float>(lm_head_scratch_floats(chunk_, V, elem)) : nullptr;
    loss_ = c.take<float>(n);
    ids_ = c.take<int32_t>(n);
    mask_ = c.take<int32_t>(n);
    pos_ = c.take<int32_t>(n);
    seg_ = c.take<int32_t>(n);
    seg_runs_dev_ = c.take<int32_t>(2 * n);  // each position's run start, then its end
    tgt_ = c.take<int32_t>(n);
    return c.off + 256;
  }
  void ensure_acts(int64_t B, int64_t S) {
    size_t need = carve(nullptr, B, S);
    if (need > act_bytes_) {
      if (act_) free_dev(act_);
      act_ = nullptr;
      act_bytes_ = 0;
      act_ = static_cast<char*>(alloc(
          need,
          ("activations for batch " + std::to_string(B) + " x seq " + std::to_string(S)).c_str()));
      act_bytes_ = need;
    }
    carve(act_, B, S);
    B_ = B;
    S_ = S;
    n_ = B * S;
  }

  // ---- offloaded checkpoints ---------------------------------------------------------------
  bool offload() const {
    return opt_.offload_checkpoints != 0 && opt_.recompute != LORA4J_RECOMPUTE_NONE;
  }
  // The backward's re-run keeps the attention output and lse (SELECTIVE, ATTENTION).
  bool keeps_attention() const {
    return opt_.recompute == LORA4J_RECOMPUTE_SELECTIVE ||
           opt_.recompute == LORA4J_RECOMPUTE_ATTENTION;
  }
  // What the backward keeps of layer l (device pointer, bytes): its bf16 input, then with
  // SELECTIVE and ATTENTION its attention output and lse, then with ATTENTION its q, k and v.
  // On the host each part sits at a 256-byte aligned offset of the layer's block.
  std::vector<std::pair<void*, size_t>> ck_parts(int l) const {
    const size_t n = size_t(n_), L = size_t(l);
    std::vector<std::pair<void*, size_t>> p{{xck_[L], n * size_t(shape_.c.hidden_size) * 2}};
    if (keeps_attention()) {
      p.push_back({attck_[L], n * size_t(shape_.q_dim()) * 2});
      p.push_back({lseck_[L], size_t(B_ * int64_t(shape_.c.num_heads) * S_) * sizeof(float)});
    }
    if (opt_.recompute == LORA4J_RECOMPUTE_ATTENTION) {
      p.push_back({qck_[L], n * size_t(shape_.q_dim()) * 2});
      p.push_back({kck_[L], n * size_t(shape_.kv_dim()) * 2});
      p.push_back({vck_[L], n * size_t(shape_.kv_dim()) * 2});
    }
    return p;
  }
  static size_t up256(size_t b) { return (b + 255) / 256 * 256; }
  size_t ck_layer_bytes() const {
    size_t t = 0;
    for (auto& part : ck_parts(0)) t += up256(part.second);
    return t;
  }
  char* host_ck(int l) { return host_ck_ + size_t(l) * ck_layer_bytes(); }
  // Layer l's parts from the device to the host (to_host) or back, on copy_stream_.
  void ck_copy(int l, bool to_host) {
    char* h = host_ck(l);
    for (auto& [dev, bytes] : ck_parts(l)) {
      LORA4J_CU(cudaMemcpyAsync(
          to_host ? static_cast<void*>(h) : dev, to_host ? static_cast<const void*>(dev) : h, bytes,
          to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice, copy_stream_));
      h += up256(bytes);
    }
  }
  // The last two layers never leave the device (the backward starts with them), so the host
  // holds num_layers - 2 layers.
  void ensure_host_checkpoints() {
    const int64_t L = shape_.c.num_layers;
    size_t need = size_t(std::max<int64_t>(L - 2, 0)) * ck_layer_bytes();
    if (need <= host_ck_bytes_) return;
    drop_graphs();  // the graphs' copies address the old buffer
    LORA4J_CU(cudaStreamSynchronize(copy_stream_));
    if (host_ck_) cudaFreeHost(host_ck_);
    host_ck_ = nullptr;
    host_ck_bytes_ = 0;
    void* p = nullptr;
    cudaError_t e = cudaHostAlloc(&p, need, cudaHostAllocDefault);
    if (e != cudaSuccess) {
      cudaGetLastError();
      fail(e == cudaErrorMemoryAllocation ? LORA4J_ENOMEM : LORA4J_EDEVICE,
           "cudaHostAlloc of " + std::to_string(need) +
               " bytes of pinned host memory for the offloaded checkpoints (batch " +
               std::to_string(B_) + " x seq " + std::to_string(S_) +
               ") failed: " + cudaGetErrorString(e) +
               "; train without --offload-checkpoints (offload_checkpoints) or with a smaller "
               "batch");
    }
    host_ck_ = static_cast<char*>(p);
    host_ck_bytes_ = need;
  }
  // Forward, after layer l has written its checkpoint (slot l % 2): to the host, unless it is one
  // of the last two layers.
  void ck_to_host(int l) {
    const int s = l % 2;
    if (l >= shape_.c.num_layers - 2) return;
    LORA4J_CU(cudaEventRecord(ck_filled_[s], stream_));
    LORA4J_CU(cudaStreamWaitEvent(copy_stream_, ck_filled_[s], 0));
    ck_copy(l, true);
    LORA4J_CU(cudaEventRecord(ck_moved_[s], copy_stream_));
  }
  // Forward, before layer l writes slot l % 2: the copy of layer l - 2 out of it has finished.
  void ck_slot_free_fwd(int l) {
    if (l >= 2) LORA4J_CU(cudaStreamWaitEvent(stream_, ck_moved_[l % 2], 0));
  }
  // Backward, as layer l starts: layer l - 1 comes back into slot (l - 1) % 2 once layer l + 1,
  // the last user of that slot, is done with it (ck_done_). Layers num_layers - 1 and - 2 are
  // still in their slots.
  void ck_prefetch(int l) {
    const int L = shape_.c.num_layers, p = l - 1;
    if (p < 0 || p >= L - 2) return;
    const int s = p % 2;
    LORA4J_CU(cudaStreamWaitEvent(copy_stream_, ck_done_[s], 0));
    ck_copy(p, false);
    LORA4J_CU(cudaEventRecord(ck_moved_[s], copy_stream_));
  }

  // Whether every row of b's mask is ones followed by zeros, with at least one one, and no
  // padded position's (shifted) target counts: its output then reaches no loss.
  static bool right_padded(const lora4j_batch& b) {
    for (int64_t r = 0; r < b.batch; ++r) {
      const int32_t* row = b.attention_mask + r * b.seq;
      const int32_t* end = row + b.seq;
      const int32_t* z = std::find_if(row, end, [](int32_t m) { return m != 1; });
      if (z == row || std::any_of(z, end, [](int32_t m) { return m != 0; })) return false;
      if (b.labels)
        for (int64_t t = z - row; t + 1 < b.seq; ++t)
          if (b.labels[r * b.seq + t + 1] != -100) return false;
    }
    return true;
  }

  // Uploads the batch: ids, positions, mask, segments, shifted targets.
  void prepare(const lora4j_batch& b, bool targets) {
    require_weights();
    ensure_acts(b.batch, b.seq);
    const int64_t n = n_;
    LORA4J_CU(cudaMemcpyAsync(ids_, b.input_ids, size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
    host_pos_.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i)
      host_pos_[size_t(i)] = b.position_ids ? b.position_ids[i] : int32_t(i % b.seq);
    LORA4J_CU(
        cudaMemcpyAsync(pos_, host_pos_.data(), size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
    // A mask of all ones, or rows that each hold one segment, attend exactly as none: drop them,
    // so the attention kernels take their unmasked tiles (the masked path tests every element;
    // a collated batch of equal-length rows carries such a mask, which made `lora4j train` 9-13%
    // slower than the engine at 4 x 2048 and 8 x 4096).
    has_mask_ = b.attention_mask != nullptr && std::any_of(b.attention_mask, b.attention_mask + n,
                                                           [](int32_t m) { return m != 1; });
    // A right-padded batch (each row ones, then zeros, at least one one; no padded position's
    // target counting) needs no mask where a loss is taken (targets): under causal attention a
    // valid token never sees the padding after it, and the padding's outputs reach no counted
    // loss, so its gradients are exactly zero and add nothing to any other gradient. The trainer's
    // batches of mixed lengths are such; they then take the unmasked kernels (the Hopper ones at
    // head_dim 64 or 128). logits() and hidden_states() keep the mask: they return every
    // position's output, the padding's too, as the masked attention gives it.
    // LORA4J_RIGHT_PAD_UNMASKED=0 keeps it everywhere.
    if (has_mask_ && targets && right_pad_unmasked_ && right_padded(b)) has_mask_ = false;
    has_seg_ = false;
    if (b.segment_ids)
      for (int64_t r = 0; r < b.batch && !has_seg_; ++r) {
        const int32_t* row = b.segment_ids + r * b.seq;
        has_seg_ = std::any_of(row, row + b.seq, [&](int32_t v) { return v != row[0]; });
      }
    if (has_mask_)
      LORA4J_CU(
          cudaMemcpyAsync(mask_, b.attention_mask, size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
    if (has_seg_)
      LORA4J_CU(
          cudaMemcpyAsync(seg_, b.segment_ids, size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
    // Packed rows whose segments are runs of positions (the trainer's: 1, 2, 3, ..., then 0 for
    // the padding) also carry each position's run, so that the Hopper attention kernels take
    // them (attention_sm90.cu); other segment layouts stay on the mma.sync kernels, as do all
    // with LORA4J_SEGMENT_RUNS=0.
    has_runs_ = false;
    if (has_seg_ && seg_runs_) {
      host_runs_.resize(size_t(2 * n));
      has_runs_ = cuda::segment_runs(b.segment_ids, b.batch, b.seq, host_runs_.data(),
                                     host_runs_.data() + n);
      if (has_runs_)
        LORA4J_CU(cudaMemcpyAsync(seg_runs_dev_, host_runs_.data(), size_t(2 * n) * 4,
                                  cudaMemcpyHostToDevice, stream_));
    }
    host_tgt_.assign(size_t(n), -100);
    if (targets && b.labels)
      for (int64_t r = 0; r < b.batch; ++r)
        for (int64_t t = 0; t + 1 < b.seq; ++t)
          host_tgt_[size_t(r * b.seq + t)] = b.labels[r * b.seq + t + 1];
    LORA4J_CU(
        cudaMemcpyAsync(tgt_, host_tgt_.data(), size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));  // host vectors may change after return
  }

  // ---- projections ----------------------------------------------------------------------------
  bool has_lora(int l, int p) const { return layout_ && layout_->index_of(l, p) >= 0; }
  const bf16* lora_a(int l, int p) {
    return lora_bf16_ + layout_->tensors[size_t(layout_->index_of(l, p))].offset;
  }
  const bf16* lora_b(int l, int p) {
    return lora_bf16_ + layout_->tensors[size_t(layout_->index_of(l, p)) + 1].offset;
  }
  float* grad_a(int l, int p) {
    return arena_ + layout_->total + layout_->tensors[size_t(layout_->index_of(l, p))].offset;
  }
  float* grad_b(int l, int p) {
    return arena_ + layout_->total + layout_->tensors[size_t(layout_->index_of(l, p)) + 1].offset;
  }
  // The group's A matrices stacked, [members x r, in] (a lone member: its own A).
  bf16* grp_a(int l, int g) { return grp_a_ + grp_a_off_[size_t(l) * kGroups + size_t(g)]; }
  // The group's width in t_ (p's slice of (dy B) side by side with its members'): members x rank.
  int64_t t_ld(int p) const { return int64_t(grp_size_[p]) * layout_->rank; }
  // projection p's (dy B) columns in t_ (its group's slice, row stride t_ld)
  bf16* t_of(int p) const { return t_ + int64_t(grp_pos_[p]) * layout_->rank; }

  // D = alpha A B^T + beta C for A [M, K] and B [N, K] row-major (gemm_.run(false, true, ...)).
  // A decode call of one row (decoding_, M 1) takes the GEMV kernel (gemv.cu) where it accepts
  // the call: cuBLASLt's M = 1 kernels split the narrow weights' K (a reduction kernel after
  // each); the step is 0.1-0.3 ms faster with the kernel for every product, the 117 MB ones
  // included (fortieth and forty-first sessions). LORA4J_DECODE_GEMV=0 keeps cuBLASLt (A/B runs,
  // test_decode_cuda).
  bool decode_gemv(int64_t M, int64_t N, int64_t K, const void* A, const void* B, int64_t ldb,
                   bool f16, void* D, bool d_f32, float alpha, float beta, const void* C,
                   const char* what, bool split = false) {
    if (!decoding_ || !decode_gemv_ || M != 1) return false;
    GemvParams g;
    g.x = A;
    g.w = B;
    g.ldw = ldb;
    g.N = N;
    g.K = K;
    g.f16 = f16;
    g.c = C;
    g.y = D;
    g.y_f32 = d_f32;
    g.alpha = alpha;
    g.beta = beta;
    g.pdl = pdl_here();
    g.split = split;
    if (!gemv_accepts(g)) return false;
    KCHECK(gemv(g, stream_));
    tm(what);
    return true;
  }
  void mm_nt(int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, const bf16* B,
             int64_t ldb, void* D, bool d_f32, int64_t ldd, float alpha, float beta,
             const char* what, const void* C = nullptr, bool split = false) {
    if (decode_gemv(M, N, K, A, B, ldb, false, D, d_f32, alpha, beta, C, what, split)) return;
    gemm_.run(false, true, M, N, K, A, lda, B, ldb, D, d_f32, ldd, alpha, beta, what, C);
  }
  void mm_nt_f16(int64_t M, int64_t N, int64_t K, const f16* A, int64_t lda, const f16* B,
                 int64_t ldb, float* D, int64_t ldd, float alpha, float beta, const char* what) {
    if (decode_gemv(M, N, K, A, B, ldb, true, D, true, alpha, beta, nullptr, what)) return;
    gemm_.run_f16(M, N, K, A, lda, B, ldb, D, ldd, alpha, beta, what);
  }

  // xa = s x A^T for the targeted projections that read input x (row stride ldx; kGroupOf == g):
  // one GEMM per group over its stacked A, from its first member (whose xa is the group's first
  // column); a: the activation set whose xa receives it (row stride xa_ld_). The scale s is
  // applied here, so that the folded GEMM (kFoldGroup) needs no scale of its own.
  void lora_a_forward(int l, int g, const bf16* x, int64_t ldx, int64_t n, LayerActs& a) {
    for (int p = 0; p < NUM_PROJ; ++p) {
      if (kGroupOf[p] != g || !has_lora(l, p) || grp_pos_[p] != 0) continue;
      const int64_t in = shape_.proj_in(p), w = t_ld(p);
      const bf16* A = grp_size_[p] >= 2 ? grp_a(l, g) : lora_a(l, p);
      // at decode its few rows in gemv's split order (8 warps a row: 9.7 -> 2.2 us a product at
      // 7B), unless LORA4J_DECODE_GEMV_SPLIT=0
      mm_nt(n, w, in, x, ldx, A, in, a.xa[p], false, xa_ld_[p], layout_->scale, 0.f,
            "lora_A forward", nullptr, decode_gemv_split_);
    }
  }

  // y = x W^T (+ residual) + xa B^T, xa = s x A^T formed by lora_a_forward; x has row stride
  // ldx. y bf16, or fp32 when y_f32 (then `residual`, fp32 and nullable, is added). A residual
  // with y bf16 is the bf16 stream (res16_): the sum is formed in fp32 and rounded once, by
  // cuBLASLt's epilogue (no unfolded LoRA term) or by lora_b_residual_bf16 after the frozen GEMM
  // wrote x W^T in fp32 to dtmp_ (free at o's and down's forward).
  // x_lo (nullable, needs y_f32; row stride ldx): the bf16 rounding residue of x; the frozen GEMM
  // then also runs on it, so y is as exact as an fp32 x would make it (the LoRA term keeps bf16 x).
  // x_lo8 (nullable, needs y_f32; row stride in): the same residue in e4m3, times lo8_scale_[l]
  // (set_qk_lo_mode); the weight goes to e4m3 in w8_ and an FP8 GEMM adds the product.
  // x16 (nullable, needs y_f32 and no residual; row stride ldx, its spare columns holding xa in
  // fp16 when folded): x in fp16; the weight goes to fp16 in wf16_ and the frozen GEMM runs on
  // both in fp16 instead of bf16 (qk_f16_ok).
  // A folded projection (kFoldGroup: xa in x's spare columns, B in W's) is one GEMM over
  // K = in + members x r. Otherwise the small LoRA product is formed first and the large GEMM
  // accumulates onto it in its epilogue (one memory-bound pass over y).
  void proj_forward(int l, int p, const bf16* x, int64_t ldx, int64_t n, void* y, bool y_f32,
                    const void* residual, const bf16* xa, const bf16* x_lo = nullptr,
                    const uint8_t* x_lo8 = nullptr, const f16* x16 = nullptr) {
    const int64_t in = shape_.proj_in(p), out = shape_.proj_out(p);
    const bf16* W = wproj(l, p);
    const int64_t ldw = wld(proj_index(l, p));
    float beta = residual ? 1.f : 0.f;
    const void* c = residual;
    const int64_t K = gemm_k(l, p);
    if (residual && !y_f32) {
      if (x_lo || x_lo8 || x16) fail(LORA4J_EINTERNAL, "the bf16 residual takes a plain bf16 x");
      if (!has_lora(l, p) || folded(l, p)) {
        mm_nt(n, out, K, x, ldx, W, ldw, y, false, out, 1.f, 1.f, proj_module(p), residual);
        return;
      }
      const int r = int(layout_->rank);
      const bf16* res = static_cast<const bf16*>(residual);
      bf16* yb = static_cast<bf16*>(y);
      mm_nt(n, out, K, x, ldx, W, ldw, dtmp_, true, out, 1.f, 0.f, proj_module(p));
      if (lora_b_kernel_ &&
          lora_b_residual_bf16_supported(xa, xa_ld_[p], lora_b(l, p), r, res, dtmp_, yb, out)) {
        KCHECK(
            lora_b_residual_bf16(xa, xa_ld_[p], lora_b(l, p), r, res, dtmp_, yb, n, out, stream_));
      } else {
        mm_nt(n, out, r, xa, xa_ld_[p], lora_b(l, p), r, dtmp_, true, out, 1.f, 1.f,
              "lora_B forward");
        KCHECK(lora_b_residual_bf16(nullptr, 0, nullptr, 0, res, dtmp_, yb, n, out, stream_));
      }
      tm("lora_B forward + residual");
      return;
    }
    if (lora_apart(l, p) && !x_lo && !x_lo8 && !x16 &&
        decode_lora_tail(l, p, x, n, K, W, ldw, y, y_f32, residual, xa))
      return;
    if (lora_apart(l, p)) {
      const int64_t r = layout_->rank;
      float* yf = y_f32 ? static_cast<float*>(y) : nullptr;
      const float* rf = static_cast<const float*>(residual);
      if (yf && lora_b_kernel_ &&
          lora_b_residual_supported(xa, xa_ld_[p], lora_b(l, p), int(r), rf, yf, out)) {
        KCHECK(lora_b_residual(xa, xa_ld_[p], lora_b(l, p), int(r), rf, yf, n, out, stream_));
        tm("lora_B forward");
      } else {
        mm_nt(n, out, r, xa, xa_ld_[p], lora_b(l, p), r, y, y_f32, out, 1.f, beta, "lora_B forward",
              c);
      }
      beta = 1.f;
      c = nullptr;
    }
    if (x16) {
      if (!y_f32 || c) fail(LORA4J_EINTERNAL, "the fp16 q/k GEMM takes an fp32 y, no residual");
      const f16* w16 = decoding_ ? decode_w16(l, p) : nullptr;
      if (!w16) {
        KCHECK(bf16_to_f16_2d(W, ldw, wf16_, ldw, out, K, stream_));
        tm("q/k weights to f16");
        w16 = wf16_;
      }
      mm_nt_f16(n, out, K, x16, ldx, w16, ldw, static_cast<float*>(y), out, 1.f, beta,
                proj_module(p));
    } else {
      mm_nt(n, out, K, x, ldx, W, ldw, y, y_f32, out, 1.f, beta, proj_module(p), c);
    }
    if (x_lo)
      gemm_.run(false, true, n, out, in, x_lo, ldx, W, ldw, y, true, out, 1.f, 1.f, proj_module(p));
    if (x_lo8) {
      KCHECK(e4m3_quantize(W, out, in, ldw, w8_, w8_scales_, stream_));
      tm("q/k weight to e4m3");
      gemm_.run_e4m3(n, out, in, x_lo8, in, nullptr, w8_, in, w8_scales_ + kE4m3InvScale,
                     static_cast<float*>(y), out, 1.f / lo8_scale_[size_t(l)], 1.f, proj_module(p));
    }
  }
  // A decode step's projection with an unfolded LoRA term (o and down: y fp32 = residual + x W^T
  // + xa B^T) as one gemv, xa and B summed as K's continuation (GemvParams::K2: the sums a folded
  // weight gives), where the frozen gemv and lora_b_residual took two launches (2.6 us more a
  // projection at 7B). LORA4J_DECODE_LORA_TAIL=0 keeps the two (A/B runs, test_decode_cuda).
  // False where it does not apply (then the caller's path).
  bool decode_lora_tail(int l, int p, const bf16* x, int64_t n, int64_t K, const bf16* W,
                        int64_t ldw, void* y, bool y_f32, const void* residual, const bf16* xa) {
    if (!decoding_ || !decode_gemv_ || !decode_lora_tail_ || n != 1 || !y_f32 || !xa) return false;
    const int64_t r = layout_->rank;
    GemvParams g;
    g.x = x;
    g.w = W;
    g.ldw = ldw;
    g.N = shape_.proj_out(p);
    g.K = K;
    g.x2 = xa;
    g.w2 = lora_b(l, p);
    g.ldw2 = r;
    g.K2 = r;
    g.c = residual;
    g.y = y;
    g.y_f32 = true;
    g.beta = residual ? 1.f : 0.f;
    g.pdl = pdl_here();
    if (!gemv_accepts(g)) return false;
    KCHECK(gemv(g, stream_));
    tm(p == O ? "o_proj + lora_B + residual (decode)" : "down_proj + lora_B + residual (decode)");
    return true;
  }
  // The fused gate/up forward + SwiGLU forward's call for layer l (swiglu_gu_fused), or one with x
  // null where it does not apply: LORA4J_SWIGLU_GU_FUSED=0, a device or call the kernel does not
  // take, a weight that is not bf16 in memory (NF4: both would dequantize into the one scratch),
  // or gate and up whose K differ (a LoRA term on one that is not folded into its GEMM).
  SwigluGuParams swiglu_gu_params(int l, const LayerActs& a) {
    SwigluGuParams sp;
    if (!swiglu_gu_fused_) return sp;
    // Decoding a few rows (a decode step's one): the kernel's 128-row tiles read W_gate and W_up
    // at about half the card's copy rate there (108 us a layer for 235 MB at one row, against
    // ~30 us for a GEMV of each), so the two GEMMs and the SwiGLU forward run instead (at one
    // row in one launch, decode_gu).
    // LORA4J_DECODE_GU_UNFUSED=0 keeps the fused kernel there (A/B runs, test_decode_cuda).
    if (decoding_ && decode_gu_unfused_ && n_ < kGuFusedMinDecodeRows) return sp;
    const bf16* wg = proj_[size_t(proj_index(l, GATE))].dense;
    const bf16* wu = proj_[size_t(proj_index(l, UP))].dense;
    const int64_t d = shape_.c.hidden_size, g = kGroupOf[GATE];
    auto k_of = [&](int p) -> int64_t {
      if (folded(l, p)) return d + fold_cols_[g];
      return has_lora(l, p) ? -1 : d;  // an unfolded LoRA term needs lora_B's own pass
    };
    const int64_t kg = k_of(GATE), ku = k_of(UP);
    if (!wg || !wu || kg < 0 || kg != ku) return sp;
    sp.x = a.xn2;
    sp.ldx = xld_[g];
    sp.wg = wg;
    sp.wu = wu;
    sp.ldwg = wld(proj_index(l, GATE));
    sp.ldwu = wld(proj_index(l, UP));
    sp.gate = a.gate;
    sp.up = a.up;
    sp.h = a.h;
    sp.n = n_;
    sp.K = kg;
    sp.I = shape_.c.intermediate_size;
    return swiglu_gu_fused_accepts(sp) ? sp : SwigluGuParams{};
  }
  // The fused down input gradient + SwiGLU backward's call for layer l (swiglu_dx_fused, in place
  // over gate and up), or one with dy null where it does not apply: LORA4J_SWIGLU_DX_FUSED=0, a
  // device or call the kernel does not take (not Hopper, a rank or row stride it refuses), or
  // down's LoRA sharing its T with other members.
  SwigluDxParams swiglu_dx_params(int l, const LayerActs& a) {
    SwigluDxParams sp;
    if (!swiglu_dx_fused_ || (has_lora(l, DOWN) && grp_size_[DOWN] >= 2)) return sp;
    const int64_t d = shape_.c.hidden_size, I = shape_.c.intermediate_size;
    sp.dy = dy_;
    sp.ldy = d;
    sp.w = proj_[size_t(proj_index(l, DOWN))].dense;  // an NF4 weight: checked below
    sp.ldw = wld(proj_index(l, DOWN));
    if (has_lora(l, DOWN)) {
      sp.t = t_of(DOWN);
      sp.ldt = t_ld(DOWN);
      sp.a = lora_a(l, DOWN);
      sp.r = int(layout_->rank);
      sp.s = layout_->scale;
    }
    sp.gate = sp.dgate = a.gate;
    sp.up = sp.dup = a.up;
    sp.n = n_;
    sp.d = d;
    sp.I = I;
    sp.form = swiglu_dx_form_;
    if (!sp.w) sp.w = scratch_;  // NF4: the accepts check below sees the scratch's alignment
    if (!swiglu_dx_fused_accepts(sp)) return SwigluDxParams{};
    sp.w = wproj(l, DOWN);  // dequantizes an NF4 weight into the scratch
    return sp;
  }
  // dx (+)= dy W + s (dy B) A; dA += s (dy B)^T x; dB += dy^T xa (xa = s x A^T). x has row
  // stride ldx. (dy B) goes to p's slice of t_. A lone member's LoRA part of dx goes first so the
  // large GEMM adds onto it in its epilogue; a member of a group of two or more leaves it, and
  // its dA unless LORA4J_LORA_GROUP_DA=0, to group_lora_backward, after the group.
  // defer_lora_dx: a lone member leaves s (dy B) A out of dx too (the caller adds it: down's goes
  // into the SwiGLU backward, swiglu_backward_lora). dx null: no input gradient (layer 0's q, k
  // and v, whose input gradient would reach only the frozen embedding), the LoRA gradients only.
  // dy's row stride ldy: 0 for its width (out); more when dy is a slice of wider rows (dqkv_).
  // dy_done: T and dLoRA_B are computed already (qkv_pair).
  void proj_backward(int l, int p, const bf16* dy, int64_t ldy, const bf16* x, int64_t ldx,
                     const bf16* xa, int64_t n, void* dx, bool dx_f32, bool accumulate,
                     bool defer_lora_dx = false, bool dy_done = false) {
    const int64_t in = shape_.proj_in(p), out = shape_.proj_out(p);
    if (ldy == 0) ldy = out;
    float beta = accumulate ? 1.f : 0.f;
    if (has_lora(l, p)) {
      const int64_t r = layout_->rank, w = t_ld(p);
      const float s = layout_->scale;
      bf16* t = t_of(p);
      if (dy_done) {
        // qkv_pair wrote T and added dLoRA_B
      } else if (dy_pair_ &&
                 lora_dy_pair_supported(dy, ldy, out, int(r), lora_b(l, p), xa, xa_ld_[p])) {
        KCHECK(lora_dy_pair(dy, ldy, n, out, lora_b(l, p), int(r), xa, xa_ld_[p], t, w,
                            grad_b(l, p), dy_pair_, dy_pair_slots_, stream_));
        tm(proj_label(p, kDyPairLabel));
      } else {
        gemm_.run(true, false, out, r, n, dy, ldy, xa, xa_ld_[p], grad_b(l, p), true, r, 1.f, 1.f,
                  "dLoRA_B");
        gemm_.run(false, false, n, r, out, dy, ldy, lora_b(l, p), r, t, false, w, 1.f, 0.f, "dy B");
      }
      if (!(group_da_ && grp_size_[p] >= 2))  // else group_lora_backward, for the whole group
        gemm_.run(true, false, r, in, n, t, w, x, ldx, grad_a(l, p), true, in, s, 1.f, "dLoRA_A");
      if (grp_size_[p] < 2 && !defer_lora_dx && dx) {
        gemm_.run(false, false, n, in, r, t, w, lora_a(l, p), in, dx, dx_f32, in, s, beta,
                  "dX through LoRA");
        beta = 1.f;
      }
    }
    if (dx)
      gemm_.run(false, false, n, in, out, dy, ldy, wproj(l, p), wld(proj_index(l, p)), dx, dx_f32,
                in, 1.f, beta, dx_label(p));
  }
  // For group g of two or more members, after their proj_backward: T = their (dy B) side by side
  // in t_, A_g their A matrices stacked, x the group's input (row stride ldx).
  // dA_g = s T^T x as one GEMM into group_da_ (x read once for the group instead of once per
  // member), each member's rows added onto its gradient (unless LORA4J_LORA_GROUP_DA=0, when
  // proj_backward computed each member's dLoRA_A); then dx += s T A_g, one GEMM (dx fp32), unless
  // dx is null.
  void group_lora_backward(int l, int g, const bf16* x, int64_t ldx, int64_t n, float* dx) {
    for (int p = 0; p < NUM_PROJ; ++p) {
      if (kGroupOf[p] != g || !has_lora(l, p) || grp_pos_[p] != 0 || grp_size_[p] < 2) continue;
      const int64_t in = shape_.proj_in(p), w = t_ld(p), r = layout_->rank;
      const float s = layout_->scale;
      if (group_da_) {
        gemm_.run(true, false, w, in, n, t_, w, x, ldx, group_da_, true, in, s, 0.f, "dLoRA_A");
        F32Slices dst{};
        int count = 0;
        for (int q = 0; q < NUM_PROJ; ++q)
          if (kGroupOf[q] == g && has_lora(l, q)) dst.p[grp_pos_[q]] = grad_a(l, q), ++count;
        KCHECK(add_f32_slices(group_da_, r * in, dst, count, stream_));
        tm("dLoRA_A");
      }
      if (dx)
        gemm_.run(false, false, n, in, w, t_, w, grp_a(l, g), in, dx, true, in, s, 1.f,
                  "dX through LoRA");
    }
  }

  AttentionParams attn_params(const LayerActs& a, const f16* k, const bf16* v, int q_offset,
                              int Sk) {
    AttentionParams ap;
    ap.q = a.q;
    ap.k = k;
    ap.v = v;
    ap.o = a.att;
    ap.lse = a.lse;
    ap.o_f32 = a.att32;
    ap.B = int(B_);
    ap.Sq = int(S_);
    ap.Sk = Sk;
    ap.H = shape_.c.num_heads;
    ap.KH = shape_.c.num_kv_heads;
    ap.D = shape_.c.head_dim;
    ap.q_bstride = S_ * shape_.q_dim();
    ap.kv_bstride = int64_t(Sk) * shape_.kv_dim();
    ap.q_offset = q_offset;
    ap.key_mask = has_mask_ ? mask_ : nullptr;
    ap.segments = has_seg_ ? seg_ : nullptr;
    ap.seg_start = has_runs_ ? seg_runs_dev_ : nullptr;  // has_runs_ implies has_seg_
    ap.seg_end = has_runs_ ? seg_runs_dev_ + n_ : nullptr;
    ap.window = shape_.c.sliding_window;
    ap.scale = float(1.0 / std::sqrt(double(shape_.c.head_dim)));
    return ap;
  }

  // ---- the residual stream's type (res16_) ------------------------------------------------
  void* take_res(Carver& c, int64_t count) {
    return res16_ ? static_cast<void*>(c.take<bf16>(count))
                  : static_cast<void*>(c.take<float>(count));
  }
  cudaError_t embed(void* x) {
    const int64_t d = shape_.c.hidden_size;
    return res16_ ? embedding_forward(ids_, wembed(), static_cast<bf16*>(x), n_, d, stream_)
                  : embedding_forward(ids_, wembed(), static_cast<float*>(x), n_, d, stream_);
  }
  cudaError_t norm_forward(const void* x, const bf16* w, bf16* y, float* rstd, int64_t n, float eps,
                           bf16* y_lo = nullptr, int64_t ldy = 0, Lo8 lo8 = {}, Y16 y16 = {}) {
    const int64_t d = shape_.c.hidden_size;
    return res16_ ? rmsnorm_forward(static_cast<const bf16*>(x), w, y, rstd, n, d, eps, stream_,
                                    y_lo, ldy, lo8, y16, pdl_here())
                  : rmsnorm_forward(static_cast<const float*>(x), w, y, rstd, n, d, eps, stream_,
                                    y_lo, ldy, lo8, y16, pdl_here());
  }
  cudaError_t norm_backward(const float* dy, const void* x, const bf16* w, const float* rstd,
                            float* dx, int64_t n, bool accumulate, bf16* dx_bf16) {
    const int64_t d = shape_.c.hidden_size;
    return res16_ ? rmsnorm_backward(dy, static_cast<const bf16*>(x), w, rstd, dx, n, d, accumulate,
                                     stream_, dx_bf16)
                  : rmsnorm_backward(dy, static_cast<const float*>(x), w, rstd, dx, n, d,
                                     accumulate, stream_, dx_bf16);
  }

  // A decode step's RMSNorm (x -> y, one row; x's spare columns after d holding the LoRA
  // products) with group g's LoRA A product (lora_a_forward's) in one launch (rmsnorm_lora_a: the
  // bits of norm_forward, gemv's split order and, with xa16, the products' fp16 copy into y16's
  // spare columns), where those took two or three launches. False where it does not apply (then the
  // caller runs them apart): not one row of a decode call, no LoRA term in the group, a residue
  // asked for (lo, lo8), the split order off, a product wider than the split order takes, or
  // LORA4J_DECODE_NORM_A=0 (A/B runs, test_decode_cuda).
  bool decode_norm_lora_a(int l, int g, const void* x, const bf16* w, bf16* y, float* rstd,
                          const bf16* lo, const Lo8& lo8, f16* y16, bool xa16, LayerActs& a) {
    if (!decoding_ || n_ != 1 || !decode_gemv_ || !decode_gemv_split_ || !decode_norm_a_ || lo ||
        lo8.p)
      return false;
    int first = -1;  // the member whose call lora_a_forward makes for the group
    for (int p = 0; p < NUM_PROJ; ++p)
      if (kGroupOf[p] == g && has_lora(l, p) && grp_pos_[p] == 0) first = p;
    if (first < 0) return false;
    const int64_t d = shape_.c.hidden_size, m = t_ld(first);
    if (shape_.proj_in(first) != d) return false;
    // xa16: the products' fp16 copy goes where bf16_to_f16_2d puts it, y16's columns after d
    if (xa16 && (!y16 || a.xa[first] != y + d || fold_cols_[g] != m)) return false;
    RmsnormLoraAParams rp;
    rp.x = x;
    rp.x_bf16 = res16_;
    rp.w = w;
    rp.y = y;
    rp.rstd = rstd;
    rp.y16 = y16;
    rp.d = d;
    rp.eps = shape_.c.rms_norm_eps;
    rp.A = grp_size_[first] >= 2 ? grp_a(l, g) : lora_a(l, first);
    rp.lda = d;
    rp.m = m;
    rp.alpha = layout_->scale;
    rp.xa = a.xa[first];
    rp.xa16 = xa16 ? y16 + d : nullptr;
    rp.pdl = pdl_here();
    if (!rmsnorm_lora_a_accepts(rp)) return false;
    KCHECK(rmsnorm_lora_a(rp, stream_));
    tm("rmsnorm + lora_A forward (decode)");
    return true;
  }

  // One decoder layer from x_[l]. kcache/vcache: where K and V go (null: the activation set);
  // recompute: skip writing x_[l+1], and with RECOMPUTE_SELECTIVE the attention forward (its
  // output and lse are the ones the forward kept, set_for).
  // Precision of the scores: the normed input of the q and k GEMMs is split into bf16 hi + lo
  // (both GEMMs accumulate in fp32, in dtmp_, free during the forward and at a recompute),
  // RoPE rounds once, to fp16. On the hd128 reference this halves the bf16 error of the logits
  // (native/src/cuda/NOTES.md); it costs one more q/k-sized GEMM in the forward.
  void layer_forward(int l, LayerActs& a, bool recompute, f16* kc = nullptr, bf16* vc = nullptr,
                     int q_offset = 0) {
    const int64_t n = n_, d = shape_.c.hidden_size, I = shape_.c.intermediate_size;
    const float eps = shape_.c.rms_norm_eps;
    f16* kout = kc ? kc + int64_t(q_offset) * shape_.kv_dim() : a.k;
    bf16* vout = vc ? vc + int64_t(q_offset) * shape_.kv_dim() : a.v;
    const int64_t ld1 = xld_[kGroupOf[Q]], ld2 = xld_[kGroupOf[GATE]];
    // the backward's re-run of a layer whose q, k and v were kept skips their projections
    const bool qkv = !(recompute && opt_.recompute == LORA4J_RECOMPUTE_ATTENTION);
    const bool in_f16 = qkv && qk_f16_ok(l);
    bf16* lo = in_f16 || !qkv ? nullptr : xlo_;
    const Lo8 lo8 = in_f16 || !qkv ? Lo8{} : Lo8{xlo8_, lo8_scale_[size_t(l)], d};
    // the folded GEMMs read the group's x A^T from x's spare columns: in fp16 too
    const bool xa16 = in_f16 && (folded(l, Q) || folded(l, K));
    // a decode step without an adapter on q, k, v: the RMSNorm inside gemv_pairs' launch
    const bool norm_qkv = qkv && decode_qkv(l, a, in_f16, kout, vout, true);
    if (!norm_qkv && !decode_norm_lora_a(l, kGroupOf[Q], x_[size_t(l)], wnorm1(l), a.xn1, a.rstd1,
                                         lo, lo8, in_f16 ? xf16_ : nullptr, xa16, a)) {
      KCHECK(norm_forward(x_[size_t(l)], wnorm1(l), a.xn1, a.rstd1, n, eps, lo, ld1, lo8,
                          in_f16 ? Y16{xf16_, ld1} : Y16{}));
      tm("rmsnorm forward");
      lora_a_forward(l, kGroupOf[Q], a.xn1, ld1, n, a);
      if (xa16) {
        KCHECK(bf16_to_f16_2d(a.xn1 + d, ld1, xf16_ + d, ld1, n, fold_cols_[kGroupOf[Q]], stream_));
        tm("q/k operands to f16");
      }
    }
    if (qkv && !norm_qkv && !decode_qkv(l, a, in_f16, kout, vout)) {
      const f16* x16 = in_f16 ? xf16_ : nullptr;
      proj_forward(l, Q, a.xn1, ld1, n, dtmp_, true, nullptr, a.xa[Q], lo, lo8.p, x16);
      KCHECK(rope_forward(dtmp_, a.q, pos_, inv_freq_, n, shape_.c.num_heads, shape_.c.head_dim,
                          stream_));
      tm("rope forward");
      proj_forward(l, K, a.xn1, ld1, n, dtmp_, true, nullptr, a.xa[K], lo, lo8.p, x16);
      KCHECK(rope_forward(dtmp_, kout, pos_, inv_freq_, n, shape_.c.num_kv_heads, shape_.c.head_dim,
                          stream_));
      tm("rope forward");
      proj_forward(l, V, a.xn1, ld1, n, vout, false, nullptr, a.xa[V]);
    }
    AttentionParams ap = kc ? attn_params(a, kc, vc, q_offset, q_offset + int(S_))
                            : attn_params(a, a.k, a.v, 0, int(S_));
    // the backward's re-run of a layer whose attention output was kept skips the attention
    if (!(recompute && keeps_attention())) {
      if (!decode_attention(a, kc, vc, q_offset)) KCHECK(attention_forward(ap, stream_));
      tm(attention_phase(false));
    }
    const int64_t qd = shape_.q_dim();
    lora_a_forward(l, kGroupOf[O], a.att, qd, n, a);
    proj_forward(l, O, a.att, qd, n, a.xmid, !res16_, x_[size_t(l)], a.xa[O]);
    // a decode step without an adapter on gate, up: the RMSNorm inside gemv_pairs' launch
    if (!decode_gu(l, a, true)) {
      if (!decode_norm_lora_a(l, kGroupOf[GATE], a.xmid, wnorm2(l), a.xn2, a.rstd2, nullptr, Lo8{},
                              nullptr, false, a)) {
        KCHECK(norm_forward(a.xmid, wnorm2(l), a.xn2, a.rstd2, n, eps, nullptr, ld2));
        tm("rmsnorm forward");
        lora_a_forward(l, kGroupOf[GATE], a.xn2, ld2, n, a);
      }
      const SwigluGuParams gu = swiglu_gu_params(l, a);
      if (gu.x) {
        KCHECK(swiglu_gu_fused(gu, stream_));
        tm("mlp.gate_proj + up_proj + swiglu forward");
      } else if (!decode_gu(l, a)) {
        proj_forward(l, GATE, a.xn2, ld2, n, a.gate, false, nullptr, a.xa[GATE]);
        proj_forward(l, UP, a.xn2, ld2, n, a.up, false, nullptr, a.xa[UP]);
        KCHECK(swiglu_forward(a.gate, a.up, a.h, n * I, stream_));
        tm("swiglu forward");
      }
    }
    lora_a_forward(l, kGroupOf[DOWN], a.h, I, n, a);
    // a re-run for the backward needs only xa of down: its output is the next layer's input
    if (!recompute)
      proj_forward(l, DOWN, a.h, I, n, x_[size_t(l) + 1], !res16_, a.xmid, a.xa[DOWN]);
  }

  LayerActs& set_for(int l, bool training) {
    if (training && opt_.recompute == LORA4J_RECOMPUTE_NONE) return acts_[size_t(l)];
    LayerActs& a = acts_[0];
    const bool keep = training && keeps_attention();
    a.att = keep ? attck_[size_t(l)] : shared_att_;
    a.lse = keep ? lseck_[size_t(l)] : shared_lse_;
    a.att32 = keep ? nullptr : shared_att32_;
    const bool qkv = training && opt_.recompute == LORA4J_RECOMPUTE_ATTENTION;
    a.q = qkv ? qck_[size_t(l)] : shared_q_;
    a.k = qkv ? kck_[size_t(l)] : shared_k_;
    a.v = qkv ? vck_[size_t(l)] : shared_v_;
    return a;
  }

  // hidden (nullable, host): receives every layer input x_[l] (as fp32) as it is formed.
  void forward(bool training, float* hidden = nullptr) {
    const int64_t d = shape_.c.hidden_size;
    const bool checkpoint = training && opt_.recompute != LORA4J_RECOMPUTE_NONE;
    if (checkpoint && offload()) ensure_host_checkpoints();  // sized for this batch
    KCHECK(embed(x_[0]));
    tm("embedding");
    for (int l = 0; l < shape_.c.num_layers; ++l) {
      if (hidden) {  // to pageable memory: returns when copied, before x_[l]'s buffer is reused
        const void* h = x_[size_t(l)];
        if (res16_) {  // dtmp_ is free between layers
          KCHECK(bf16_to_f32(static_cast<const bf16*>(h), dtmp_, n_ * d, stream_));
          h = dtmp_;
        }
        LORA4J_CU(cudaMemcpyAsync(hidden + l * n_ * d, h, size_t(n_ * d) * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream_));
      }
      if (checkpoint && offload()) ck_slot_free_fwd(l);
      if (checkpoint) checkpoint_layer_input(l, true);
      tm("recompute checkpoint");
      layer_forward(l, set_for(l, training), false);
      if (checkpoint && offload()) ck_to_host(l);
    }
    KCHECK(norm_forward(x_[size_t(shape_.c.num_layers)], wfinal(), hn_, rstdf_, n_,
                        shape_.c.rms_norm_eps));
    tm("rmsnorm forward");
  }
  // Layer l's input to its bf16 checkpoint (save) or back (a conversion, or a copy where the
  // stream is bf16 itself).
  void checkpoint_layer_input(int l, bool save) {
    const int64_t count = n_ * shape_.c.hidden_size;
    void* x = x_[size_t(l)];
    bf16* ck = xck_[size_t(l)];
    if (res16_) {
      void* to = save ? static_cast<void*>(ck) : x;
      const void* from = save ? static_cast<const void*>(x) : ck;
      LORA4J_CU(cudaMemcpyAsync(to, from, size_t(count) * sizeof(bf16), cudaMemcpyDeviceToDevice,
                                stream_));
    } else if (save) {
      KCHECK(f32_to_bf16(static_cast<const float*>(x), ck, count, stream_));
    } else {
      KCHECK(bf16_to_f32(ck, static_cast<float*>(x), count, stream_));
    }
  }

  // LM head + cross-entropy over chunks of tokens; with grads: dres = d loss / d x_L.
  void head_loss(float grad_scale, bool grads, double* loss_sum, int64_t* tokens) {
    const int64_t V = shape_.c.vocab_size, d = shape_.c.hidden_size;
    lm_head_loss(gemm_, hn_, wlm(), tgt_, n_, d, V, grad_scale, loss_, grads ? dtmp_ : nullptr,
                 lm_bf16_, logits_, chunk_, stream_, logits2_, loss_stream_);
    tm("lm head loss kernels");
    std::vector<float> loss(static_cast<size_t>(n_));
    LORA4J_CU(cudaMemcpyAsync(loss.data(), loss_, size_t(n_) * sizeof(float),
                              cudaMemcpyDeviceToHost, stream_));
    if (grads) {
      KCHECK(norm_backward(dtmp_, x_[size_t(shape_.c.num_layers)], wfinal(), rstdf_, dres_, n_,
                           false, dy_));
      tm("rmsnorm backward");
    }
    LORA4J_CU(cudaStreamSynchronize(stream_));
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < n_; ++i)
      if (host_tgt_[size_t(i)] != -100) {
        sum += double(loss[size_t(i)]);
        ++count;
      }
    *loss_sum = sum;
    *tokens = count;
  }

  // reduce: queue the all-reduce of each bucket of buckets_ as soon as its layers are done.
  void backward(bool reduce) {
    const int64_t n = n_, I = shape_.c.intermediate_size;
    size_t next_bucket = 0;
    for (int l = shape_.c.num_layers - 1; l >= 0; --l) {
      LayerActs& a = set_for(l, true);
      if (offload()) {
        // layer l's checkpoint is back (prefetched as layer l + 1 started); fetch l - 1's
        if (l < shape_.c.num_layers - 2)
          LORA4J_CU(cudaStreamWaitEvent(stream_, ck_moved_[l % 2], 0));
        ck_prefetch(l);
      }
      if (opt_.recompute != LORA4J_RECOMPUTE_NONE) {
        checkpoint_layer_input(l, false);
        tm("recompute checkpoint");
        layer_forward(l, a, true);
      }
      // Layer 0's input gradient would reach only the embedding, which is frozen: its q, k and
      // v input gradients and its first norm's backward are skipped; without LoRA on q, k and v
      // so are the attention backward and o's input gradient, and without LoRA on o as well,
      // the second norm's backward and gate's and up's input gradients.
      const bool need_x = l > 0;
      const bool need_att = need_x || has_lora(l, Q) || has_lora(l, K) || has_lora(l, V);
      const bool need_mid = need_att || has_lora(l, O);
      // MLP (dy_ = bf16(dres_), written by the norm backward above this layer)
      const int64_t ld2 = xld_[kGroupOf[GATE]], qd = shape_.q_dim();
      // down's LoRA input gradient s (dy B) A goes into the SwiGLU backward (no pass over dh)
      const bool down_in_swiglu = lora_dx_swiglu_ && has_lora(l, DOWN) && grp_size_[DOWN] < 2 &&
                                  layout_->rank <= kSwigluLoraMaxRank;
      const SwigluDxParams fused = swiglu_dx_params(l, a);
      if (fused.dy) {
        // the LoRA gradients (and T) only; then dh = dy W + s T A and the SwiGLU backward in one
        // kernel, in place, dh never written
        proj_backward(l, DOWN, dy_, 0, a.h, I, a.xa[DOWN], n, nullptr, true, false, true);
        KCHECK(swiglu_dx_fused(fused, stream_));
        tm("mlp.down_proj dX + swiglu backward");
      } else {
        proj_backward(l, DOWN, dy_, 0, a.h, I, a.xa[DOWN], n, dtmp_, true, false, down_in_swiglu);
        // in place: d gate and d up overwrite gate and up, which nothing reads afterwards
        if (down_in_swiglu)
          KCHECK(swiglu_backward_lora(dtmp_, t_of(DOWN), t_ld(DOWN), lora_a(l, DOWN),
                                      int(layout_->rank), layout_->scale, a.gate, a.up, a.gate,
                                      a.up, n, I, stream_));
        else
          KCHECK(swiglu_backward(dtmp_, a.gate, a.up, a.gate, a.up, n * I, stream_));
        tm("swiglu backward");
      }
      float* dxn2 = need_mid ? dtmp_ : nullptr;
      proj_backward(l, GATE, a.gate, 0, a.xn2, ld2, a.xa[GATE], n, dxn2, true, false);
      proj_backward(l, UP, a.up, 0, a.xn2, ld2, a.xa[UP], n, dxn2, true, true);
      group_lora_backward(l, kGroupOf[GATE], a.xn2, ld2, n, dxn2);
      if (need_mid) {
        KCHECK(norm_backward(dtmp_, a.xmid, wnorm2(l), a.rstd2, dres_, n, true, dy_));
        tm("rmsnorm backward");
        // attention
        proj_backward(l, O, dy_, 0, a.att, qd, a.xa[O], n, need_att ? datt_ : nullptr, false,
                      false);
      }
      if (need_att) attention_and_qkv_backward(l, a, need_x ? dtmp_ : nullptr);
      // every LoRA gradient of layer l is final: nothing below writes them
      if (reduce) reduce_buckets(l, &next_bucket);
      if (need_x) {
        KCHECK(norm_backward(dtmp_, x_[size_t(l)], wnorm1(l), a.rstd1, dres_, n, true, dy_));
        tm("rmsnorm backward");
      }
      if (offload()) LORA4J_CU(cudaEventRecord(ck_done_[l % 2], stream_));
    }
    if (reduce) reduce_buckets(-1, &next_bucket);
  }

  // The attention block's backward of layer l below o's input gradient (datt_): the attention,
  // RoPE, q / k / v's LoRA gradients, and their input gradient into dx (fp32, null: none).
  // When the input gradient folds (qkv_dx) and qkv_direct_ holds, the attention backward and
  // RoPE's write dq, dk and dv straight into their columns of dqkv_ (row stride qkv_k) and the
  // projections read them there; else they go to dq_, dk_ and dv_ (rows of their own width).
  void attention_and_qkv_backward(int l, LayerActs& a, float* dx) {
    const int64_t n = n_, ld1 = xld_[kGroupOf[Q]], qd = shape_.q_dim(), kvd = shape_.kv_dim();
    const bool fold = dx && qkv_dx_foldable(l), direct = fold && qkv_direct_;
    const int64_t ld = direct ? qkv_k(l) : 0;  // 0: each gradient's own width
    bf16* dq = direct ? dqkv_ : dq_;
    bf16* dk = direct ? dqkv_ + qd : dk_;
    bf16* dv = direct ? dqkv_ + qd + kvd : dv_;
    AttentionBackwardParams bp;
    bp.f = attn_params(a, a.k, a.v, 0, int(S_));
    bp.dout = datt_;
    bp.dq = nullptr;  // dQ stays in dq_acc_ (fp32): RoPE's backward below rounds it once
    bp.dk = dk;
    bp.dv = dv;
    bp.dkv_ld = ld;
    bp.dq_accum = dq_acc_;
    bp.delta = delta_;
    bp.out_f32 = a.att32;
    KCHECK(attention_backward(bp, stream_));
    tm(attention_phase(true));
    KCHECK(rope_backward_f32(dq_acc_, dq, pos_, inv_freq_, n, shape_.c.num_heads, shape_.c.head_dim,
                             stream_, ld));
    tm("rope backward");
    KCHECK(rope_backward(dk, pos_, inv_freq_, n, shape_.c.num_kv_heads, shape_.c.head_dim, stream_,
                         ld));
    tm("rope backward");
    const bool one = direct && qkv_pair(l, a, dq, dk, dv, ld);
    proj_backward(l, Q, dq, ld, a.xn1, ld1, a.xa[Q], n, fold ? nullptr : dx, true, false, false,
                  one);
    proj_backward(l, K, dk, ld, a.xn1, ld1, a.xa[K], n, fold ? nullptr : dx, true, true, false,
                  one);
    proj_backward(l, V, dv, ld, a.xn1, ld1, a.xa[V], n, fold ? nullptr : dx, true, true, false,
                  one);
    group_lora_backward(l, kGroupOf[Q], a.xn1, ld1, n, fold ? nullptr : dx);
    if (fold) qkv_dx(l, dx, direct);
  }

  // q, k and v's input gradient as one GEMM: dx = [dq | dk | dv | s T] . [Wq; Wk; Wv; A_g] over
  // K = qd + 2 kvd (+ 3 r with LoRA), with T = the group's (dy B) (t_, from proj_backward) and A_g
  // its stacked A (grp_a). Three GEMMs over K = qd, kvd, kvd (k's and v's at about 60% of q's
  // rate, K being small) and the group's LoRA term (a pass over the fp32 dx) become one. The
  // operands lie side by side in place where they can (the gradients in dqkv_, written there by
  // attention_and_qkv_backward; the weights and A in the layer's block, pack_qkv), else they are
  // copied there (bf16_copy_2d into dqkv_ and wqkv_); s T is copied beside the gradients, rounded
  // to bf16 once (exact when s is a power of two). Taken when q, k and v all carry LoRA in one
  // group, or none of them does (qkv_fold_layout).
  bool qkv_dx_foldable(int l) const { return qkv_dx_fold_ && dqkv_ && qkv_fold_layout(l); }
  // q, k and v's LoRA pair passes (T and dLoRA_B) as one launch over their gradients dq, dk, dv
  // side by side in dqkv_ (row stride ld): k's and v's alone are 4 column blocks each, too few for
  // the GPU, and each launch has its own tail. Taken when all three carry LoRA (the fold's group of
  // three) and lora_dy_pair_multi applies; false: proj_backward runs each one's pass. Called on
  // the fold's layout only (qkv_fold_layout: q carrying LoRA means k and v do, in its group, so
  // the three share t_'s and xa's row strides). LORA4J_QKV_PAIR_ONE=0 keeps the three launches.
  bool qkv_pair(int l, const LayerActs& a, const bf16* dq, const bf16* dk, const bf16* dv,
                int64_t ld) {
    if (!qkv_pair_one_ || !dy_pair_ || !has_lora(l, Q)) return false;
    const int64_t qd = shape_.q_dim(), kvd = shape_.kv_dim(), w = t_ld(Q);
    const LoraDyPairProj proj[3] = {{dq, qd, lora_b(l, Q), a.xa[Q], t_of(Q), grad_b(l, Q)},
                                    {dk, kvd, lora_b(l, K), a.xa[K], t_of(K), grad_b(l, K)},
                                    {dv, kvd, lora_b(l, V), a.xa[V], t_of(V), grad_b(l, V)}};
    const int r = int(layout_->rank);
    if (!lora_dy_pair_multi_supported(proj, 3, ld, r, xa_ld_[Q])) return false;
    KCHECK(lora_dy_pair_multi(proj, 3, ld, n_, r, xa_ld_[Q], w, dy_pair_, dy_pair_slots_, stream_));
    tm("dy B + dLoRA_B, self_attn.q_proj + k_proj + v_proj");
    return true;
  }
  // K of layer l's fold: dqkv_'s row stride there
  int64_t qkv_k(int l) const { return shape_.q_dim() + 2 * shape_.kv_dim() + qkv_a_rows(l); }
  // direct: dq, dk and dv are in dqkv_ already (attention_and_qkv_backward)
  void qkv_dx(int l, float* dx, bool direct) {
    const int64_t n = n_, d = shape_.c.hidden_size, qd = shape_.q_dim(), kvd = shape_.kv_dim();
    const int64_t lw = qkv_a_rows(l), Kc = qkv_k(l);
    const bool block = qkv_block_ready(l);  // the weights and A stacked in place (pack_qkv)
    const bf16* w = block ? qkv_block_[size_t(l)].p : wqkv_;
    const int64_t ldw = block ? qkv_block_[size_t(l)].ld : d;
    int64_t row = 0;
    if (!block) {
      for (int p : {Q, K, V}) {
        const int64_t out = shape_.proj_out(p);
        KCHECK(bf16_copy_2d(wproj(l, p), wld(proj_index(l, p)), wqkv_ + row * d, d, out, d, 1.f,
                            stream_));
        row += out;
      }
      if (lw)
        KCHECK(bf16_copy_2d(grp_a(l, kGroupOf[Q]), d, wqkv_ + row * d, d, lw, d, 1.f, stream_));
    }
    if (!direct) {
      KCHECK(bf16_copy_2d(dq_, qd, dqkv_, Kc, n, qd, 1.f, stream_));
      KCHECK(bf16_copy_2d(dk_, kvd, dqkv_ + qd, Kc, n, kvd, 1.f, stream_));
      KCHECK(bf16_copy_2d(dv_, kvd, dqkv_ + qd + kvd, Kc, n, kvd, 1.f, stream_));
    }
    if (lw)
      KCHECK(bf16_copy_2d(t_of(Q), lw, dqkv_ + qd + 2 * kvd, Kc, n, lw, layout_->scale, stream_));
    tm("q/k/v dX operands");
    gemm_.run(false, false, n, d, Kc, dqkv_, Kc, w, ldw, dx, true, d, 1.f, 0.f, "self_attn.qkv dX");
  }

  // ---- decoding ---------------------------------------------------------------------------
  void ensure_cache() {
    if (kcache_) return;
    const int64_t L = shape_.c.num_layers, per = int64_t(shape_.c.max_seq_len) * shape_.kv_dim();
    // per layer: K (fp16) then V (bf16), both 2 bytes per element
    kcache_ = static_cast<uint16_t*>(alloc(size_t(2 * L * per) * sizeof(uint16_t), "KV cache"));
    // decode_attention's partial sums: a share's [H, D + 2] floats each
    dec_part_ =
        static_cast<float*>(alloc(size_t(kDecodeAttentionMaxSplits) * size_t(shape_.c.num_heads) *
                                      size_t(shape_.c.head_dim + 2) * sizeof(float),
                                  "decode attention partial sums"));
  }
  // A decode step's attention (one row against the cache: kc given, n_ 1) by the kernel for one
  // query row (attention_decode.cu), which shares the keys out among blocks: the prefill's kernels
  // tile 64 or 128 query rows and walk every key tile in one block per head there.
  // LORA4J_DECODE_ATTENTION=0 keeps attention_forward (A/B runs, test_decode_cuda). False where
  // it does not apply (then the caller runs attention_forward).
  bool decode_attention(const LayerActs& a, const f16* kc, const bf16* vc, int q_offset) {
    if (!kc || n_ != 1 || !decode_attention_) return false;
    DecodeAttentionParams p;
    p.q = a.q;
    p.k = kc;
    p.v = vc;
    p.o = a.att;
    p.H = shape_.c.num_heads;
    p.KH = shape_.c.num_kv_heads;
    p.D = shape_.c.head_dim;
    p.Sk = q_offset + 1;
    p.window = shape_.c.sliding_window;
    p.kv_stride = shape_.kv_dim();
    p.scale = float(1.0 / std::sqrt(double(shape_.c.head_dim)));
    p.part = dec_part_;
    p.pdl = pdl_here();
    if (!attention_decode_accepts(p)) return false;
    KCHECK(attention_decode(p, stream_));
    return true;
  }
  // A decode step's q, k and v (one row; the fp16 q/k path with decode_start's kept fp16 weights;
  // bf16 v; no LoRA term outside the GEMMs): one launch of gemv_pairs, RoPE applied to q and k as
  // their sums come out, k and v written into the cache. The same bits as the three GEMVs and two
  // RoPE passes it replaces (test_ops_cuda, test_decode_cuda), four launches fewer a layer.
  // LORA4J_DECODE_FUSED=0 keeps them apart (A/B runs, test_decode_cuda). False where it does not
  // apply (then the caller runs the projections one by one).
  // With norm (decode_norm_fold_, no adapter on q, k, v): the layer's RMSNorm in the same launch
  // (GemvPairsNorm: each block normalizes x_[l] as norm_forward does; xn1, rstd1 and the fp16
  // copy are not stored, as nothing after reads them at decode), one launch fewer a layer.
  bool decode_qkv(int l, const LayerActs& a, bool in_f16, f16* kout, bf16* vout,
                  bool norm = false) {
    if (!decode_fused_here() || !in_f16 || lora_apart(l, Q) || lora_apart(l, K) || lora_apart(l, V))
      return false;
    if (norm && (!decode_norm_fold_ || has_lora(l, Q) || has_lora(l, K) || has_lora(l, V)))
      return false;
    const f16 *wq = decode_w16(l, Q), *wk = decode_w16(l, K);
    const bf16* wv = proj_[size_t(proj_index(l, V))].dense;  // an NF4 v: apart
    if (!wq || !wk || !wv) return false;
    GemvPairsParams g;
    g.count = 3;
    g.pos = pos_;
    g.inv_freq = inv_freq_;
    g.seg[0] = pair_segment(l, Q, GemvPairKind::kRope, xf16_, wq, a.q);
    g.seg[1] = pair_segment(l, K, GemvPairKind::kRope, xf16_, wk, kout);
    g.seg[2] = pair_segment(l, V, GemvPairKind::kPair, a.xn1, wv, vout);
    if (norm) fold_norm(g, x_[size_t(l)], wnorm1(l));
    return launch_pairs(g, norm ? "rmsnorm + q/k/v + rope (decode)" : "q/k/v + rope (decode)");
  }
  // A decode step's gate and up products and the SwiGLU forward (one row, bf16 weights, no LoRA
  // term outside the GEMMs): one launch of gemv_pairs, a warp summing row n of both weights and
  // forming h[n]. The same bits as the two GEMVs and the SwiGLU pass it replaces; gate and up are
  // not stored. LORA4J_DECODE_FUSED=0 keeps them apart.
  // With norm (decode_norm_fold_, no adapter on gate, up, where the fused Hopper kernel is not
  // taken): the layer's second RMSNorm in the same launch, as decode_qkv's.
  bool decode_gu(int l, const LayerActs& a, bool norm = false) {
    if (!decode_fused_here() || lora_apart(l, GATE) || lora_apart(l, UP)) return false;
    if (norm &&
        (!decode_norm_fold_ || has_lora(l, GATE) || has_lora(l, UP) || swiglu_gu_params(l, a).x))
      return false;
    const bf16 *wg = proj_[size_t(proj_index(l, GATE))].dense,
               *wu = proj_[size_t(proj_index(l, UP))].dense;
    if (!wg || !wu || gemm_k(l, GATE) != gemm_k(l, UP)) return false;
    GemvPairsParams g;
    g.count = 1;
    g.seg[0] = pair_segment(l, GATE, GemvPairKind::kSwiglu, a.xn2, wg, a.h);
    g.seg[0].w1 = wu;
    g.seg[0].ldw1 = wld(proj_index(l, UP));
    if (norm) fold_norm(g, a.xmid, wnorm2(l));
    return launch_pairs(g,
                        norm ? "rmsnorm + gate/up + swiglu (decode)" : "gate/up + swiglu (decode)");
  }
  // g's segments to read x's row normalized in the launch (GemvPairsNorm) instead of their x
  void fold_norm(GemvPairsParams& g, const void* x, const bf16* w) const {
    for (int s = 0; s < g.count; ++s) g.seg[s].x = nullptr;
    g.norm.x = x;
    g.norm.x_bf16 = res16_;
    g.norm.w = w;
    g.norm.eps = shape_.c.rms_norm_eps;
    g.norm.d = shape_.c.hidden_size;
  }
  // a decode call of one row that may take gemv_pairs (decode_qkv, decode_gu)
  bool decode_fused_here() const { return decoding_ && decode_fused_ && decode_gemv_ && n_ == 1; }
  // A decode call's RMSNorms, GEMVs, gemv_pairs and attention kernels are launched with
  // programmatic dependent launch (common.cuh; sm_90 on): each one's blocks are placed as the
  // kernel before it drains and wait there for its completion, which hides most of the ~1-2 us
  // between the ~260 launches of a one-row step (forty-first session's trace: ~0.43 ms of a
  // 4.75 ms step idle). Measured at 7B: 4.60-4.68 -> 4.34-4.36 ms a step; with the next kernel
  // released early (launch_dependents) or the weights' first rows prefetched into L2 before the
  // wait, slower (forty-second session). Phase times (an event after every op) run without it.
  // LORA4J_DECODE_PDL=0 launches them plainly (A/B runs, test_decode_cuda).
  bool pdl_here() const { return decoding_ && decode_pdl_ && !phases_; }
  // projection (l, p) as a gemv_pairs segment: its stride, K (the folded columns included) and
  // output count, x and weight w (bf16, or the kept fp16 copy for kRope), y the output
  GemvPairSegment pair_segment(int l, int p, GemvPairKind kind, const void* x, const void* w,
                               void* y) const {
    GemvPairSegment sg;
    sg.kind = kind;
    sg.f16 = kind == GemvPairKind::kRope;
    sg.x = x;
    sg.w0 = w;
    sg.ldw0 = wld(proj_index(l, p));
    sg.K = gemm_k(l, p);
    sg.N = shape_.proj_out(p);
    sg.y = y;
    sg.D = shape_.c.head_dim;
    return sg;
  }
  bool launch_pairs(GemvPairsParams g, const char* what) {
    g.pdl = pdl_here();
    if (!gemv_pairs_accepts(g)) return false;
    KCHECK(gemv_pairs(g, stream_));
    tm(what);
    return true;
  }
  // The fp16 q/k path (qk_f16_ok) converts each layer's q and k weight to fp16 before its GEMM:
  // at one row that conversion (read 2 B, write 2 B an element) costs more than the GEMV's own
  // read of the weight (0.68 ms a decode step at 7B). decode_start makes the conversions once
  // into dec_w16_ (the same kernel over the same rows, columns and stride as proj_forward's, so
  // the same bits), and the decode calls read them until a weight or the adapter changes
  // (dec_w16_ok_ cleared by set_weight, set_weight_nf4, lora_set of a parameter, lora_detach /
  // attach, lora_merge and optimizer_step). Bf16 weights only (an NF4 weight's scratch is
  // dequantized per call anyway). Kept allocated beside the KV cache, 2 bytes an element of q's
  // and k's weights (1.3 GB at Mistral-7B); where that allocation fails, decoding converts per
  // call as before. LORA4J_DECODE_QK_CACHE=0 converts per call (A/B runs, test_decode_cuda).
  void build_decode_w16() {
    dec_w16_ok_ = false;
    const int L = shape_.c.num_layers;
    dec_w16_off_.assign(size_t(2 * L), -1);
    if (!decode_qk_cache_ || !qk_f16_) return;
    int64_t total = 0;
    for (int l = 0; l < L; ++l) {
      if (!qk_f16_ok(l)) continue;
      for (int j = 0; j < 2; ++j) {
        const int i = proj_index(l, j == 0 ? Q : K);
        if (!proj_[size_t(i)].dense) continue;
        dec_w16_off_[size_t(2 * l + j)] = total;
        total += (shape_.proj_out(j == 0 ? Q : K) * wld(i) + 63) / 64 * 64;  // 128-byte aligned
      }
    }
    if (total == 0) return;
    const size_t bytes = size_t(total) * sizeof(f16);
    if (bytes > dec_w16_bytes_) {
      free_dev(dec_w16_);
      dec_w16_ = nullptr;
      dec_w16_bytes_ = 0;
      void* p = nullptr;
      if (try_alloc(bytes, &p) != cudaSuccess) return;  // no room: the per-call conversion stays
      dec_w16_ = static_cast<f16*>(p);
      dec_w16_bytes_ = bytes;
    }
    for (int l = 0; l < L; ++l)
      for (int j = 0; j < 2; ++j) {
        const int64_t off = dec_w16_off_[size_t(2 * l + j)];
        if (off < 0) continue;
        const int p = j == 0 ? Q : K, i = proj_index(l, p);
        const int64_t ldw = wld(i);
        KCHECK(bf16_to_f16_2d(wproj(l, p), ldw, dec_w16_ + off, ldw, shape_.proj_out(p),
                              gemm_k(l, p), stream_));
      }
    dec_w16_ok_ = true;
  }
  // Layer l's q (p Q) or k (p K) weight in fp16 from decode_start's conversions, or null.
  const f16* decode_w16(int l, int p) const {
    if (!dec_w16_ok_ || (p != Q && p != K)) return nullptr;
    const int64_t off = dec_w16_off_[size_t(2 * l + (p == Q ? 0 : 1))];
    return off < 0 ? nullptr : dec_w16_ + off;
  }
  // The state of a decode call (decode_run, decode_greedy): rows of len tokens, decoding_ set
  // until the scope ends.
  struct DecodeScope {
    CudaEngine& e;
    DecodeScope(CudaEngine& en, int32_t len) : e(en) {
      e.ensure_acts(1, len);
      e.has_mask_ = e.has_seg_ = e.has_runs_ = false;
      e.decoding_ = true;
    }
    ~DecodeScope() { e.decoding_ = false; }
  };
  void decode_run(const int32_t* tokens, const int32_t* pos, int32_t len, int32_t q_offset,
                  float* logits) {
    DecodeScope scope(*this, len);
    if (phases_) phases_->start();  // a decode call is a step of the phase times too
    LORA4J_CU(cudaMemcpyAsync(ids_, tokens, size_t(len) * 4, cudaMemcpyHostToDevice, stream_));
    LORA4J_CU(cudaMemcpyAsync(pos_, pos, size_t(len) * 4, cudaMemcpyHostToDevice, stream_));
    decode_pass(q_offset);
    LORA4J_CU(cudaMemcpyAsync(logits, logits_, size_t(shape_.c.vocab_size) * sizeof(float),
                              cudaMemcpyDeviceToHost, stream_));
    LORA4J_CU(cudaStreamSynchronize(stream_));
    if (phases_) phases_->finish();
  }
  // A decode call's rows (ids_, pos_ on the device) through the model into the cache at
  // q_offset, the last row's logits into logits_ (fp32 [V]).
  void decode_pass(int32_t q_offset) {
    const int64_t d = shape_.c.hidden_size, V = shape_.c.vocab_size,
                  per = int64_t(shape_.c.max_seq_len) * shape_.kv_dim();
    KCHECK(embed(x_[0]));
    for (int l = 0; l < shape_.c.num_layers; ++l)
      layer_forward(l, set_for(l, false), false, reinterpret_cast<f16*>(kcache_ + 2 * l * per),
                    reinterpret_cast<bf16*>(kcache_ + (2 * l + 1) * per), q_offset);
    KCHECK(norm_forward(x_[size_t(shape_.c.num_layers)], wfinal(), hn_, rstdf_, n_,
                        shape_.c.rms_norm_eps));
    mm_nt(1, V, d, hn_ + (n_ - 1) * d, d, wlm(), d, logits_, true, V, 1.f, 0.f, "lm_head");
  }
  // Greedy decoding with the tokens kept on the device: each step's argmax by greedy_argmax_feed
  // into the next step's ids_ and pos_ and into dec_tok_ (decode_on_device's loop), so the host
  // queues a run of kGreedyRun steps and waits once (with decode_next the GPU idles each step while
  // the logits travel to the caller and the next token back, ~0.2 ms a step at 7B in the
  // forty-second session's trace). Phase times and LORA4J_DECODE_GREEDY_DEVICE=0 take Engine's
  // step-by-step default.
  void decode_greedy(int32_t token, int32_t count, int32_t eos_id, int32_t* out,
                     int32_t* produced) override {
    device();
    if (cache_len_ <= 0) fail(LORA4J_ESTATE, "decode_greedy before decode_start");
    if (phases_ || !decode_greedy_device_)
      return Engine::decode_greedy(token, count, eos_id, out, produced);
    decode_on_device(
        token, count, eos_id, out, produced,
        [&](int32_t k, int32_t q) {
          KCHECK(greedy_argmax_feed(logits_, shape_.c.vocab_size, dec_tok_ + k, ids_, pos_, q + 1,
                                    stream_));
        },
        [](int32_t) {}, [](int32_t) {});
  }

  // Sampled decoding with the tokens and the generator kept on the device, as decode_greedy: each
  // step's draw by sample_feed (the host sampler's definition, so the same tokens and state) into
  // the next step's ids_ and pos_, dec_tok_ and the state after it (dec_state_ + 1 + k); the state
  // handed back is the one after the last step kept (steps after an eos_id in a run draw too, and
  // are dropped). The default: at 7B 4.48 ms a step against the host draw's 4.80 on an H200 (the
  // forty-sixth session, once order_boundary lost its atomics), 5.78 against 5.99-6.56 on an H100
  // in two calls of the forty-eighth; LORA4J_DECODE_SAMPLE_DEVICE=0 and phase times take Engine's
  // step-by-step default.
  void decode_sample(int32_t token, int32_t count, int32_t eos_id, const SampleParams& p,
                     int64_t* state, int32_t* out, int32_t* produced) override {
    device();
    if (cache_len_ <= 0) fail(LORA4J_ESTATE, "decode_sample before decode_start");
    const int32_t V = shape_.c.vocab_size;
    if (phases_ || !decode_sample_device_)
      return Engine::decode_sample(token, count, eos_id, p, state, out, produced);
    if (!dec_state_) {
      dec_state_ = static_cast<int64_t*>(alloc((1 + kGreedyRun) * 8, "the sampler's state"));
      dec_w_ = static_cast<int64_t*>(alloc(size_t(V) * 8, "the sampler's weights"));
      dec_key_ = static_cast<uint32_t*>(alloc(size_t(V) * 4, "the sampler's keys"));
    }
    std::vector<int64_t> states(kGreedyRun);
    decode_on_device(
        token, count, eos_id, out, produced,
        [&](int32_t k, int32_t q) {
          if (k == 0 && q == cache_len_)  // the generator's state, before the first draw
            LORA4J_CU(cudaMemcpyAsync(dec_state_, state, 8, cudaMemcpyHostToDevice, stream_));
          KCHECK(sample_feed(logits_, V, p.temperature, p.top_k, p.top_p, dec_state_, dec_w_,
                             dec_key_, dec_tok_ + k, dec_state_ + 1 + k, ids_, pos_, q + 1,
                             stream_));
        },
        [&](int32_t run) {
          LORA4J_CU(cudaMemcpyAsync(states.data(), dec_state_ + 1, size_t(run) * 8,
                                    cudaMemcpyDeviceToHost, stream_));
        },
        [&](int32_t k) { *state = states[size_t(k)]; });
  }

  // The loop of decode_greedy and decode_sample: the first step's token and position written by
  // decode_feed, then runs of up to kGreedyRun steps, each step a decode_pass at its position q
  // and pick(k, q) (the kernel that writes the step's token into dec_tok_ + k and the next step's
  // into ids_ and pos_), the run's tokens copied back with what fetch(run) queues, waited for
  // once; keep(k) for each step kept. The steps of a run after an eos_id run too (at most
  // kGreedyRun - 1; their cache rows lie past cache_len_ and are written again later).
  template <class Pick, class Fetch, class Keep>
  void decode_on_device(int32_t token, int32_t count, int32_t eos_id, int32_t* out,
                        int32_t* produced, Pick pick, Fetch fetch, Keep keep) {
    *produced = 0;
    if (count == 0) return;
    check_arg(int64_t(cache_len_) + count <= shape_.c.max_seq_len,
              "the KV cache is full (max_seq_len " + std::to_string(shape_.c.max_seq_len) +
                  "): " + std::to_string(cache_len_) + " positions held, " + std::to_string(count) +
                  " more asked");
    if (!dec_tok_)
      dec_tok_ = static_cast<int32_t*>(alloc(kGreedyRun * 4, "device decoding's tokens"));
    DecodeScope scope(*this, 1);
    KCHECK(decode_feed(ids_, pos_, token, cache_len_, stream_));
    std::vector<int32_t> got(kGreedyRun);
    int32_t n = 0;
    bool eos = false;
    while (n < count && !eos) {
      const int32_t run = std::min(int32_t(kGreedyRun), count - n);
      for (int32_t k = 0; k < run; ++k) {
        const int32_t q = cache_len_ + n + k;
        decode_pass(q);
        pick(k, q);
      }
      LORA4J_CU(
          cudaMemcpyAsync(got.data(), dec_tok_, size_t(run) * 4, cudaMemcpyDeviceToHost, stream_));
      fetch(run);
      LORA4J_CU(cudaStreamSynchronize(stream_));
      for (int32_t k = 0; k < run && !eos; ++k) {
        out[n++] = got[size_t(k)];
        keep(k);
        eos = got[size_t(k)] == eos_id;
      }
    }
    *produced = n;
    cache_len_ += n;
  }

  // Per-projection names for errors and timings: the frozen input-gradient GEMM's
  // ("self_attn.q_proj dX", ...) and lora_dy_pair's ("dy B + dLoRA_B, self_attn.q_proj", ...:
  // the phase times give each projection's pass, whose floor is one read of its dy).
  enum Label { kDxLabel, kDyPairLabel };
  static const char* proj_label(int p, Label k) {
    static const std::vector<std::string> names = [] {
      std::vector<std::string> v;
      for (int i = 0; i < NUM_PROJ; ++i) v.push_back(std::string(proj_module(i)) + " dX");
      for (int i = 0; i < NUM_PROJ; ++i)
        v.push_back("dy B + dLoRA_B, " + std::string(proj_module(i)));
      return v;
    }();
    return names[size_t(k) * NUM_PROJ + size_t(p)].c_str();
  }
  static const char* dx_label(int p) { return proj_label(p, kDxLabel); }

  // The attention's phase name: which of the batch's mask, segments or segment runs it reads.
  const char* attention_phase(bool backward) const {
    static const char* const names[2][5] = {
        {"attention forward", "attention forward, key mask", "attention forward, segments",
         "attention forward, segment runs", "attention forward, key mask, segments"},
        {"attention backward", "attention backward, key mask", "attention backward, segments",
         "attention backward, segment runs", "attention backward, key mask, segments"}};
    const int k = has_mask_ ? (has_seg_ ? 4 : 1) : !has_seg_ ? 0 : has_runs_ ? 3 : 2;
    return names[backward ? 1 : 0][k];
  }
  // ---- CUDA graphs of the training step (graph_cache.h) -------------------------------------
  void drop_graphs() noexcept {
    graphs_.clear();
    ++graph_gen_;
  }
  // Phase times record an event after every op on the host's clock: they run eagerly. So does a
  // group of ranks (world_ > 1): its steps are not yet run on two GPUs with graphs.
  bool graphs_on() const { return graph_mode_ != GraphMode::kOff && !phases_ && world_ == 1; }
  // Runs fn's work on stream_ (phase 0: the training forward, 1: its backward): eagerly at a key's
  // first step, captured into a graph at its second (then launched), the graph launched after.
  // The NF4 scratch (scratch_holds_) is the one piece of host state a capture reads and writes:
  // the capture starts from "holds none", so the graph dequantizes its first NF4 weight whatever
  // the scratch holds, and each launch leaves it as the capture did.
  template <class F>
  void graphed(int phase, F&& fn) {
    if (!graphs_on()) return fn();
    const GraphKey key{phase, B_, S_,
                       uint32_t(has_mask_) | uint32_t(has_seg_) << 1 | uint32_t(has_runs_) << 2};
    if (const GraphCache::Entry* g = graphs_.find(key)) {
      LORA4J_CU(cudaGraphLaunch(g->exec, stream_));
      scratch_holds_ = g->after;
      ++graphs_.launches;
      return;
    }
    if (!graphs_.seen_before(key) || graphs_.refused(key) || !graphs_.capturing()) {
      ++graphs_.eager;
      return fn();
    }
    const uint64_t gen = graph_gen_;
    const auto t0 = std::chrono::steady_clock::now();
    scratch_holds_ = -1;
    std::string why;
    cudaGraph_t graph = nullptr;
    const cudaError_t begin = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed);
    if (begin != cudaSuccess) {
      why = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(begin);
    } else {
      try {
        fn();
        join_copy_stream();
      } catch (const std::exception& x) {
        why = x.what();
      }
      const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
      if (why.empty() && end != cudaSuccess)
        why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(end);
    }
    if (why.empty() && gen != graph_gen_)
      why = "device memory was allocated or freed during the capture";
    cudaGraphExec_t exec = nullptr;
    if (why.empty()) {
      const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
      if (e != cudaSuccess) why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e);
    }
    if (graph) cudaGraphDestroy(graph);
    graphs_.capture_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!why.empty()) {
      cudaGetLastError();
      scratch_holds_ = -1;  // the capture's dequantizations never ran
      const std::string what = std::string("the CUDA graph of the training step's ") +
                               (phase ? "backward" : "forward") + " (batch " + std::to_string(B_) +
                               " x seq " + std::to_string(S_) + ") could not be captured: " + why;
      if (graph_mode_ == GraphMode::kRequire)
        fail(LORA4J_EDEVICE, what + " (LORA4J_CUDA_GRAPHS=require)");
      if (!graph_warned_) {
        std::fprintf(stderr, "lora4j: %s; such steps run without a graph\n", what.c_str());
        graph_warned_ = true;
      }
      graphs_.refuse(key);
      ++graphs_.eager;
      return fn();
    }
    graphs_.put(key, exec, scratch_holds_);
    ++graphs_.captures;
    LORA4J_CU(cudaGraphLaunch(exec, stream_));
    ++graphs_.launches;
  }
  // A capture must end with every stream it drew in joined to stream_: the forward's last copies
  // to the host (ck_to_host) are on copy_stream_ with nothing waiting for them.
  void join_copy_stream() {
    if (!copy_stream_) return;
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    LORA4J_CU(cudaStreamIsCapturing(copy_stream_, &st));
    if (st != cudaStreamCaptureStatusActive) return;
    LORA4J_CU(cudaEventRecord(ck_joined_, copy_stream_));
    LORA4J_CU(cudaStreamWaitEvent(stream_, ck_joined_, 0));
  }
  // LORA4J_PHASE_TIMES: the interval since the last mark was spent in `name` (no-op when off)
  void tm(const char* name) {
    if (phases_) phases_->mark(name);
  }

  lora4j_engine_options opt_;
  std::unique_ptr<PhaseTimes> phases_;
  int dev_ = -1;
  cudaStream_t stream_ = nullptr;
  cudaStream_t loss_stream_ = nullptr;  // the LM head's cross-entropy kernels (lm_head.h)
  // offload_checkpoints: the copies to and from host_ck_ (pinned; host_ck(l) is layer l's), and
  // per device slot: its checkpoint written (ck_filled_), its copy out or in finished
  // (ck_moved_), the backward done with it (ck_done_).
  cudaStream_t copy_stream_ = nullptr;
  cudaEvent_t ck_filled_[2] = {}, ck_moved_[2] = {}, ck_done_[2] = {};
  cudaEvent_t ck_joined_ = nullptr;  // a captured forward's last copies joined to stream_
  char* host_ck_ = nullptr;
  size_t host_ck_bytes_ = 0;
  void* workspace_ = nullptr;
  Gemm gemm_;
  std::unordered_map<void*, size_t> sizes_;
  int64_t in_use_ = 0, peak_ = 0;

  std::vector<WeightSpec> specs_;
  std::vector<int64_t> woff_;
  std::unordered_map<std::string, int> index_;
  std::vector<bool> wset_;
  bf16* weights_ = nullptr;
  // One projection weight: bf16 (dense) or NF4 (nf4: the allocation p points into).
  struct ProjWeight {
    bf16* dense = nullptr;
    int64_t ld = 0;  // dense's row stride (0: the projection's in; more: folded, see fold_weight)
    char* nf4 = nullptr;
    bool in_region = false;  // nf4 points into nf4_region_ (not an allocation of its own)
    bool in_block = false;   // dense points into its layer's qkv_block_ (pack_qkv)
    Nf4Params p;
  };
  std::vector<ProjWeight> proj_;
  // Per layer: the allocation holding W_q, W_k and W_v side by side (rows of stride ld, the
  // members' wld), then arows rows (stride ld) for the group's stacked A (pack_qkv); p null: none.
  struct QkvBlock {
    bf16* p = nullptr;
    int64_t ld = 0, arows = 0;
  };
  std::vector<QkvBlock> qkv_block_;
  // LORA4J_QKV_WBLOCK=0: q, k and v's weights apart, copied into wqkv_ by qkv_dx every layer
  bool qkv_wblock_ = true;
  char* nf4_region_ = nullptr;  // the NF4 forms of the projections (reserve_nf4_region)
  std::vector<size_t> nf4_slot_off_, nf4_slot_size_;
  int nf4_region_users_ = 0;
  bf16* scratch_ = nullptr;  // the bf16 form of one NF4 weight at a time
  int scratch_holds_ = -1;   // index of the weight it holds, -1: none
  float* inv_freq_ = nullptr;
  void* scalars_ = nullptr;

  std::unique_ptr<LoraLayout> layout_;
  float* arena_ = nullptr;
  bf16* lora_bf16_ = nullptr;
  int64_t step_ = 0;
  // LoRA input groups (kGroupOf): per projection, how many targeted projections its group has
  // and its place among them (0 for an untargeted one); set at attach. grp_a_: per layer and
  // group of two or more, the members' bf16 A matrices stacked ([members x rank, in]), at
  // grp_a_off_[layer * kGroups + group] (-1: a group of fewer than two).
  int grp_id_[NUM_PROJ] = {};  // the group each projection is in (kGroupOf, or itself)
  int grp_size_[NUM_PROJ] = {};
  int grp_pos_[NUM_PROJ] = {};
  // the LoRA fold (set_fold_layout): 0 off, 1 where the extra K is at most in / 16, 2 always
  // (LORA4J_LORA_FOLD); each projection's column among its input group's xa, the group's xa width
  // (members x rank), the row stride of the group's input buffer, and the row stride of each
  // projection's xa
  int fold_mode_ = 0;
  // down's LoRA input gradient added inside the SwiGLU backward (LORA4J_LORA_DX_SWIGLU=0 at the
  // engine's creation: by its own GEMM before the frozen one, to time both)
  bool lora_dx_swiglu_ = true;
  // down's input gradient and the SwiGLU backward in one kernel where it takes the call
  // (swiglu_dx_fused: Hopper; dh never written to memory), unless LORA4J_SWIGLU_DX_FUSED=0
  bool swiglu_dx_fused_ = true;
  // its form (swiglu_dx_sm90.cu), LORA4J_SWIGLU_DX_FORM read when the engine is made (so that
  // bench_cuda's paired runs can set it per engine); 0: the kernel's default
  int swiglu_dx_form_ = 0;
  // the gate/up forward with the SwiGLU forward in one kernel (swiglu_gu_fused: Hopper; gate and
  // up not read back), unless LORA4J_SWIGLU_GU_FUSED=0
  bool swiglu_gu_fused_ = true;
  bool decoding_ = false;  // inside decode_run (the KV-cache path of generation)
  bool decode_gu_unfused_ = true;
  bool decode_qk_cache_ = true;       // LORA4J_DECODE_QK_CACHE (build_decode_w16)
  bool decode_gemv_ = true;           // LORA4J_DECODE_GEMV (decode_gemv)
  bool decode_attention_ = true;      // LORA4J_DECODE_ATTENTION (decode_attention)
  bool decode_fused_ = true;          // LORA4J_DECODE_FUSED (decode_qkv, decode_gu)
  bool decode_pdl_ = false;           // LORA4J_DECODE_PDL, and sm_90 or later (pdl_here)
  int cc_ = 0;                        // the device's compute capability, 10 major + minor
  bool decode_greedy_device_ = true;  // LORA4J_DECODE_GREEDY_DEVICE (decode_greedy)
  bool decode_sample_device_ = true;  // LORA4J_DECODE_SAMPLE_DEVICE=0: the host draws
  bool decode_norm_fold_ = true;      // LORA4J_DECODE_NORM_FOLD (decode_qkv / decode_gu with norm)
  bool decode_gemv_split_ = true;     // LORA4J_DECODE_GEMV_SPLIT (GemvParams::split)
  bool decode_lora_tail_ = true;      // LORA4J_DECODE_LORA_TAIL (decode_lora_tail)
  bool decode_norm_a_ = true;         // LORA4J_DECODE_NORM_A (decode_norm_lora_a)
  static constexpr size_t kGreedyRun = 16;  // decode_greedy's steps queued at a time
  int32_t* dec_tok_ = nullptr;              // their tokens (kGreedyRun)
  int64_t* dec_state_ = nullptr;  // decode_sample's generator state, then each step's after it
  int64_t* dec_w_ = nullptr;      // sample_feed's weights (vocab_size)
  uint32_t* dec_key_ = nullptr;   // and their order keys (vocab_size)
  float* dec_part_ = nullptr;
  f16* dec_w16_ = nullptr;
  size_t dec_w16_bytes_ = 0;
  bool dec_w16_ok_ = false;
  std::vector<int64_t> dec_w16_off_;  // [2 l + (0 q, 1 k)]: offset in dec_w16_, -1 none
  static constexpr int64_t kGuFusedMinDecodeRows = 128;
  // "dy B" and "dLoRA_B" in one read of dy (lora_dy_pair) where it applies, unless
  // LORA4J_LORA_DY_PAIR=0; dy_pair_ is its scratch (carve)
  bool lora_dy_pair_ = true;
  float* dy_pair_ = nullptr;
  int dy_pair_slots_ = 0;  // lora_dy_pair_slots at the layout's rank (0: the two GEMMs)
  int dy_slots_env_ = 0;   // LORA4J_LORA_DY_SLOTS (0: unset)
  // a group's dLoRA_A as one GEMM (group_lora_backward) unless LORA4J_LORA_GROUP_DA=0;
  // group_da_ is its output before the members' gradients receive it (carve)
  bool lora_group_da_ = true;
  // q, k and v's input gradients as one GEMM (qkv_dx; LORA4J_QKV_DX_FOLD=0 keeps three), its
  // operands' buffer [n, qd + 2 kvd + 3 r] and the stacked weights' [qd + 2 kvd + 3 r, d] (carve)
  bool qkv_dx_fold_ = true;
  // LORA4J_QKV_DX_DIRECT=0: dq, dk and dv go to buffers of their own and are copied into dqkv_
  bool qkv_direct_ = true;
  // LORA4J_QKV_PAIR_ONE=0: q, k and v's LoRA pair passes as three launches (qkv_pair)
  bool qkv_pair_one_ = true;
  // The attention backward's delta = rowsum(dO * O) from the bf16 output the forward keeps anyway,
  // as Hugging Face's attention backward computes it (the recompute modes that keep the attention
  // output always did); LORA4J_ATTN_O_BF16=0 makes the forward also write an fp32 copy of O
  // (att32: n x q_dim floats per layer without recompute, 4 GiB at 4 x 2048 for Mistral-7B) and
  // the backward read it.
  bool attn_o_bf16_ = true;
  // a right-padded batch's mask dropped in the loss calls (prepare; LORA4J_RIGHT_PAD_UNMASKED=0
  // keeps it)
  bool right_pad_unmasked_ = true;
  // LORA4J_RESIDUAL=bf16: the residual stream (x_, LayerActs::xmid) in bf16, as Hugging Face's
  // bf16 model keeps it, each add rounded once (proj_forward); its gradient dres_ stays fp32.
  // Opt-in: 4 GiB less at 4 x 2048 without recompute and recompute's gradients equal to none's,
  // but the trained tiny model's loss 3x further from the CPU engine's (NOTES, thirty-seventh
  // session) for a step-time gain the paired runs did not resolve.
  bool res16_ = false;
  bf16* dqkv_ = nullptr;
  bf16* wqkv_ = nullptr;
  // the LoRA up-projection onto the fp32 residual stream (o, down unfolded) by lora_b_residual
  // instead of a K = r GEMM, unless LORA4J_LORA_B_KERNEL=0
  bool lora_b_kernel_ = true;
  float* group_da_ = nullptr;
  size_t smem_optin_ = 0;  // the device's opt-in shared memory per block
  int fold_pos_[NUM_PROJ] = {};
  int64_t fold_cols_[kGroups] = {};
  int64_t xld_[kGroups] = {};
  int64_t xa_ld_[NUM_PROJ] = {};
  bf16* grp_a_ = nullptr;
  std::vector<int64_t> grp_a_off_;
  // The optimizer step's refresh copies (copy_d2d, run_copies); LORA4J_REFRESH_BATCH=0 issues them
  // one call each, as before the table (A/B runs and the test that compares the two).
  bool refresh_batch_ = true;
  bool batch_copies_ = false;
  std::vector<cuda::Copy2D> copies_, copies_up_;
  cuda::Copy2D* copy_table_ = nullptr;
  int64_t copy_cap_ = 0;

  char* act_ = nullptr;
  size_t act_bytes_ = 0;
  int64_t B_ = 0, S_ = 0, n_ = 0, chunk_ = 1, logits_floats_ = 0;
  bool lm_bf16_ = true;  // the loss path's logits in bf16 (lm_head.h)
  std::vector<LayerActs> acts_;
  std::vector<void*> x_;  // the residual stream's buffers: fp32, or bf16 with res16_
  std::vector<bf16*> xck_;
  std::vector<bf16*> attck_;  // SELECTIVE, ATTENTION: per layer attention output and lse
  std::vector<float*> lseck_;
  std::vector<f16*> qck_, kck_;  // ATTENTION: per layer rotated q and k, and v
  std::vector<bf16*> vck_;
  bf16* shared_att_ = nullptr;  // the shared activation set's own attention buffers
  float* shared_lse_ = nullptr;
  float* shared_att32_ = nullptr;
  f16 *shared_q_ = nullptr, *shared_k_ = nullptr;
  bf16* shared_v_ = nullptr;
  // the q/k residue in e4m3 (set_qk_lo_mode): on/off, its buffer [n, d], each layer's scale,
  // the weight's e4m3 copy and its two scale floats (max |w|, 1 / S)
  bool qk_lo_e4m3_ = false;
  // the q/k GEMMs in fp16 (set_qk_lo_mode): on/off, each layer's checked bounds (kF16*), the
  // normed input's fp16 copy [n, xn1's row stride] and the weight's (carve)
  bool qk_f16_ = false;
  std::vector<uint8_t> qk_f16_ok_;
  f16* xf16_ = nullptr;
  f16* wf16_ = nullptr;
  uint8_t* xlo8_ = nullptr;
  std::vector<float> lo8_scale_;
  uint8_t* w8_ = nullptr;
  float* w8_scales_ = nullptr;
  bf16 *hn_ = nullptr, *xlo_ = nullptr, *dy_ = nullptr, *datt_ = nullptr, *dq_ = nullptr,
       *dk_ = nullptr, *dv_ = nullptr, *t_ = nullptr;
  float *rstdf_ = nullptr, *dres_ = nullptr, *dtmp_ = nullptr, *dq_acc_ = nullptr,
        *delta_ = nullptr, *logits_ = nullptr, *logits2_ = nullptr, *loss_ = nullptr;
  int32_t *ids_ = nullptr, *mask_ = nullptr, *pos_ = nullptr, *seg_ = nullptr, *tgt_ = nullptr;
  bool has_mask_ = false, has_seg_ = false;
  // packed rows' segments as runs (prepare; LORA4J_SEGMENT_RUNS=0 leaves them to mma.sync)
  int32_t* seg_runs_dev_ = nullptr;  // [2, n]: each position's run start, then its end
  bool seg_runs_ = true, has_runs_ = false;
  std::vector<int32_t> host_runs_;
  std::vector<int32_t> host_pos_, host_tgt_;

  uint16_t* kcache_ = nullptr;
  int32_t cache_len_ = 0;

  nccl::Comm comm_ = nullptr;  // null: a group of one
  int32_t world_ = 1, rank_ = 0;
  float* gathered_ = nullptr;
  size_t gathered_bytes_ = 0;
  double* f64_ = nullptr;
  size_t f64_bytes_ = 0;
  float* dev_workers_ = nullptr;  // worker rows of robust aggregation
  size_t dev_workers_bytes_ = 0;
  int64_t dev_workers_numel_ = 0;
  void* agg_ws_ = nullptr;  // the rules' workspace (aggregate_workspace_bytes)
  size_t agg_ws_bytes_ = 0;
  // the reductions overlapped with the backward (dist_reduce_in_backward)
  cudaStream_t comm_stream_ = nullptr;
  cudaEvent_t comm_done_ = nullptr;         // recorded on comm_stream_ after the last bucket
  std::vector<cudaEvent_t> bucket_ready_;   // per bucket: its layers' backward is done
  std::vector<GradBucket> buckets_;         // of the armed backward
  int64_t bucket_elems_ = 25 * 1024 * 256;  // LORA4J_DIST_BUCKET_MB, read by dist_init
  bool arm_next_ = false;                   // the next forward_backward reduces during its backward
  bool in_flight_ = false;  // reductions queued on comm_stream_ and not yet waited for
  bool reduced_ = false;    // the arena holds (or will, once settled) the group's sum

  // CUDA graphs of the training forward and backward (graphed, graph_cache.h)
  GraphMode graph_mode_ = GraphMode::kOff;
  GraphCache graphs_;
  uint64_t graph_gen_ = 0;  // counts drop_graphs (a capture that spans one is not kept)
  bool graph_warned_ = false;
  std::string graph_stats_path_;  // LORA4J_CUDA_GRAPHS_STATS: the counts appended at release
};

}  // namespace
}  // namespace cuda
}  // namespace lora4j

namespace lora4j {
namespace cuda {

Engine* make_engine(const lora4j_model_config& config, const lora4j_engine_options& options) {
  ModelShape shape(config);
  return new CudaEngine(shape, options);
}

void make_unique_id(uint8_t* id, int32_t id_bytes) {
  check_arg(size_t(id_bytes) == nccl::kUniqueIdBytes,
            "a unique id has " + std::to_string(nccl::kUniqueIdBytes) + " bytes");
  const nccl::Api& a = nccl::api();
  nccl::UniqueId uid{};
  nccl::Result r = a.ncclGetUniqueId(&uid);
  if (r != nccl::kSuccess) {
    fail(LORA4J_EDEVICE, std::string("ncclGetUniqueId failed: ") + a.ncclGetErrorString(r) + " (" +
                             a.ncclGetLastError(nullptr) + ")");
  }
  std::memcpy(id, uid.internal, sizeof uid.internal);
}

int device_count(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *why = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + " (" +
           cudaGetErrorString(e) + ")";
    // the runtime says "insufficient driver" for a machine with no NVIDIA driver at all too
    if (e == cudaErrorInsufficientDriver)
      *why = "no NVIDIA driver was found, or it is older than this build's CUDA " +
             std::to_string(CUDART_VERSION / 1000) + " runtime needs (" + *why + ")";
    else if (e == cudaErrorNoDevice)
      *why = "no CUDA device is present (" + *why + ")";
    return 0;
  }
  if (n == 0) *why = "no CUDA device is present";
  return n;
}

}  // namespace cuda
}  // namespace lora4j
