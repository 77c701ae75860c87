// NF4 on the GPU (runs on the GPU machine; skips elsewhere unless LORA4J_REQUIRE_GPU=1):
//  - the dequantization kernel (cuda/kernels/nf4.cu) against its CPU twin lora4j_nf4_dequantize,
//    bit for bit: odd element counts, a block size that splits the kernel's 8-element groups,
//    plain and double-quantized scales, bf16 and fp16 weight dtypes, every Mistral-7B projection
//    shape;
//  - the CUDA engine with NF4 projections against the CUDA engine given the dequantized weights
//    in bf16: logits, every LoRA gradient, three AdamW steps (the same GEMMs on the same bf16
//    operands, so equal to rounding noise at most), the merge, and the device memory it holds
//    (the 4-bit form and one scratch buffer, never a bf16 copy of every projection).
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/kernels/kernels.h"
#include "cuda_test_util.h"
#include "lora4j.h"
#include "nf4_test_util.h"
#include "model_config.h"

namespace {

using lora4j::cuda::bf16;

#define API(call)                                                          \
  do {                                                                     \
    int s_ = (call);                                                       \
    if (s_ != LORA4J_OK) {                                                 \
      std::printf("%s failed (%d): %s\n", #call, s_, lora4j_last_error()); \
      std::exit(2);                                                        \
    }                                                                      \
  } while (0)

void kernel_case(int64_t numel, int32_t bs, bool nested, int32_t dtype, uint64_t seed,
                 int32_t nested_bs = 256) {
  nf4test::Nf4Data d = nf4test::random_nf4(numel, bs, nested, seed, 0.05f, nested_bs);
  d.dtype = dtype;
  lora4j_nf4_weight w = d.view();
  std::vector<float> cpu(static_cast<size_t>(numel));
  API(lora4j_nf4_dequantize(&w, cpu.data()));
  // the weight as the engine holds a bf16 copy of it: bf16(value of the dtype)
  for (float& v : cpu) v = ct::round_bf16(v);
  ct::Dev<uint8_t> codes(d.codes.size()), acodes(std::max<size_t>(1, d.absmax_codes.size()));
  ct::Dev<float> table(16), absmax(std::max<size_t>(1, d.absmax.size())), ntable(256),
      nabs(std::max<size_t>(1, d.nested_absmax.size()));
  ct::up(codes, d.codes);
  ct::up(table, d.table);
  lora4j::cuda::Nf4Params p;
  p.codes = codes.p;
  p.code_table = table.p;
  if (nested) {
    ct::up(acodes, d.absmax_codes);
    ct::up(ntable, d.nested_table);
    ct::up(nabs, d.nested_absmax);
    p.absmax_codes = acodes.p;
    p.nested_table = ntable.p;
    p.nested_absmax = nabs.p;
    p.nested_blocksize = nested_bs;
    p.offset = d.offset;
  } else {
    ct::up(absmax, d.absmax);
    p.absmax = absmax.p;
  }
  p.numel = numel;
  p.blocksize = bs;
  p.half_first = dtype == LORA4J_DTYPE_F16;
  ct::Dev<bf16> out(static_cast<size_t>(numel));
  out.poison();
  CT_CUDA(lora4j::cuda::nf4_dequantize(p, out.p, nullptr));
  CT_CUDA(cudaDeviceSynchronize());
  std::vector<float> gpu = ct::down_bf16(out);
  size_t diff = 0;
  for (size_t i = 0; i < gpu.size(); ++i)
    if (std::memcmp(&gpu[i], &cpu[i], 4) != 0) ++diff;
  char name[200];
  std::snprintf(name, sizeof name, "dequantize n=%lld block=%d %s %s", (long long)numel, bs,
                nested ? "nested" : "plain", dtype == LORA4J_DTYPE_F16 ? "f16" : "bf16");
  ct::report_bool("nf4", name, diff == 0, std::to_string(diff) + " elements differ");
}

using nf4test::Weight;
using nf4test::weights;

std::vector<float> lora_state(lora4j_engine* e, int32_t kind) {
  std::vector<float> all;
  int32_t n = 0;
  API(lora4j_lora_count(e, &n));
  for (int32_t i = 0; i < n; ++i) {
    char name[256];
    int64_t r = 0, c = 0;
    API(lora4j_lora_info(e, i, name, sizeof name, &r, &c));
    std::vector<float> v(size_t(r * c));
    API(lora4j_lora_get(e, kind, name, v.data(), r * c));
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

// xa_in_x: the NF4 engine attaches with LORA4J_LORA_FOLD=1, so its q, k, v and gate, up keep
// xa in spare columns of their input as at Mistral-7B widths, where an NF4 weight cannot fold
// and its lora_B GEMM reads xa from there; the bf16 engine attaches with the fold off, so both
// run the same GEMMs on the same values.
void engine_case(bool nested, int recompute, bool xa_in_x = false) {
  const std::string tag = std::string(nested ? " nested" : " plain") +
                          (recompute ? " recompute" : "") + (xa_in_x ? " xa in x" : "");
  lora4j_model_config c = testutil::model_config(101, 64, 96, 2, 4, 2, 16, 32);
  lora4j_engine_options o{};
  o.device = LORA4J_DEVICE_CUDA;
  o.recompute = recompute;
  lora4j_engine *a = nullptr, *b = nullptr;
  API(lora4j_engine_create(&c, &o, &a));
  API(lora4j_engine_create(&c, &o, &b));
  ct::Rng rng(5);
  uint64_t seed = nested ? 300 : 400;
  int64_t bf16_proj_bytes = 0, nf4_payload = 0, largest = 0, projections = 0;
  for (const Weight& w : weights(c)) {
    if (w.slot < LORA4J_SLOT_INPUT_NORM) {
      nf4test::Nf4Data d = nf4test::random_nf4(w.numel, 64, nested, ++seed, 0.2f);
      lora4j_nf4_weight v = d.view();
      std::vector<float> deq(size_t(w.numel));
      API(lora4j_nf4_dequantize(&v, deq.data()));
      API(lora4j_engine_set_weight_nf4(a, w.name.c_str(), &v));
      API(lora4j_engine_set_weight(b, w.name.c_str(), LORA4J_DTYPE_F32, deq.data(), w.numel));
      bf16_proj_bytes += 2 * w.numel;
      nf4_payload += int64_t(d.codes.size() + d.absmax_codes.size()) + 4 * 16 +
                     4 * int64_t(d.absmax.size() + d.nested_absmax.size()) + (nested ? 4 * 256 : 0);
      largest = std::max(largest, w.numel);
      ++projections;
    } else {
      std::vector<float> v(size_t(w.numel));
      for (float& x : v) x = rng.uniform(-0.3f, 0.3f);
      if (w.slot == LORA4J_SLOT_INPUT_NORM || w.slot == LORA4J_SLOT_POST_ATTN_NORM ||
          w.slot == LORA4J_SLOT_FINAL_NORM)
        for (float& x : v) x += 1.f;
      API(lora4j_engine_set_weight(a, w.name.c_str(), LORA4J_DTYPE_F32, v.data(), w.numel));
      API(lora4j_engine_set_weight(b, w.name.c_str(), LORA4J_DTYPE_F32, v.data(), w.numel));
    }
  }
  int64_t ua = 0, pa = 0, ub = 0, pb = 0;
  API(lora4j_engine_memory(a, &ua, &pa));
  API(lora4j_engine_memory(b, &ub, &pb));
  // every NF4 slot of the engine's region rounds each of its (up to five) pieces to 256 bytes
  const int64_t want = ub - bf16_proj_bytes + nf4_payload + 2 * largest;
  ct::report_bool("nf4", "device memory: 4-bit weights + one scratch" + tag,
                  ua >= want && ua <= want + projections * 5 * 256,
                  std::to_string(ua) + " bytes, bf16 engine " + std::to_string(ub) + ", expected " +
                      std::to_string(want) + " + alignment");
  // one projection set again in the other form (plain scales for double-quantized ones and the
  // reverse): it may not fit the slot the engine's NF4 region keeps for it, and computes alike
  {
    const char* g = "model.layers.0.mlp.gate_proj.weight";
    const int64_t gn = int64_t(c.intermediate_size) * c.hidden_size;
    nf4test::Nf4Data d = nf4test::random_nf4(gn, 64, !nested, ++seed, 0.2f);
    lora4j_nf4_weight v = d.view();
    std::vector<float> deq(static_cast<size_t>(gn));
    API(lora4j_nf4_dequantize(&v, deq.data()));
    API(lora4j_engine_set_weight_nf4(a, g, &v));
    API(lora4j_engine_set_weight(b, g, LORA4J_DTYPE_F32, deq.data(), gn));
  }
  for (lora4j_engine* e : {a, b}) {
    if (xa_in_x) setenv("LORA4J_LORA_FOLD", e == a ? "1" : "0", 1);  // read at the attach
    API(lora4j_lora_attach(e, 8, 2.f, 127u));
    unsetenv("LORA4J_LORA_FOLD");
  }
  int32_t n = 0;
  API(lora4j_lora_count(a, &n));
  for (int32_t i = 0; i < n; ++i) {
    char name[256];
    int64_t r = 0, cc = 0;
    API(lora4j_lora_info(a, i, name, sizeof name, &r, &cc));
    std::vector<float> v(size_t(r * cc));
    for (float& x : v) x = rng.uniform(-0.1f, 0.1f);
    for (lora4j_engine* e : {a, b})
      API(lora4j_lora_set(e, LORA4J_STATE_PARAM, name, LORA4J_DTYPE_F32, v.data(), r * cc));
  }
  const int B = 2, S = 24;
  std::vector<int32_t> ids(B * S), labels(B * S);
  for (int i = 0; i < B * S; ++i) {
    ids[size_t(i)] = rng.integer(0, c.vocab_size - 1);
    labels[size_t(i)] = i % 7 == 0 ? -100 : rng.integer(0, c.vocab_size - 1);
  }
  lora4j_batch batch{B, S, ids.data(), nullptr, labels.data(), nullptr, nullptr};
  std::vector<float> la(size_t(B * S * c.vocab_size)), lb(la.size());
  API(lora4j_logits(a, &batch, la.data(), int64_t(la.size())));
  API(lora4j_logits(b, &batch, lb.data(), int64_t(lb.size())));
  ct::report("nf4", "engine logits vs bf16 engine" + tag, ct::rel_err(la, lb), 1e-6);
  lora4j_adamw opt{1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f};
  for (int step = 0; step < 3; ++step) {
    double lsa = 0, lsb = 0;
    int64_t ta = 0, tb = 0;
    API(lora4j_zero_grad(a));
    API(lora4j_zero_grad(b));
    API(lora4j_forward_backward(a, &batch, 0.05f, &lsa, &ta));
    API(lora4j_forward_backward(b, &batch, 0.05f, &lsb, &tb));
    ct::report("nf4", "step " + std::to_string(step) + " loss" + tag,
               std::fabs(lsa - lsb) / std::fabs(lsb), 1e-6);
    ct::report("nf4", "step " + std::to_string(step) + " every LoRA gradient" + tag,
               ct::rel_err(lora_state(a, LORA4J_STATE_GRAD), lora_state(b, LORA4J_STATE_GRAD)),
               1e-6);
    lora4j_step_result ra{}, rb{};
    API(lora4j_optimizer_step(a, &opt, &ra));
    API(lora4j_optimizer_step(b, &opt, &rb));
  }
  ct::report("nf4", "three AdamW steps: LoRA parameters" + tag,
             ct::rel_err(lora_state(a, LORA4J_STATE_PARAM), lora_state(b, LORA4J_STATE_PARAM)),
             1e-6);
  API(lora4j_lora_merge(a));
  API(lora4j_lora_merge(b));
  const char* q = "model.layers.1.self_attn.q_proj.weight";
  const int64_t qn = int64_t(c.num_heads) * c.head_dim * c.hidden_size;
  std::vector<float> wa(static_cast<size_t>(qn)), wb(static_cast<size_t>(qn));
  API(lora4j_engine_get_weight(a, q, wa.data(), qn));
  API(lora4j_engine_get_weight(b, q, wb.data(), qn));
  ct::report("nf4", "merged weight (NF4 turned bf16, then merged)" + tag, ct::rel_err(wa, wb),
             1e-6);
  // merged, every projection is bf16 in both engines: the NF4 region is gone, the scratch stays
  API(lora4j_engine_memory(a, &ua, &pa));
  API(lora4j_engine_memory(b, &ub, &pb));
  // (with xa in x the two engines' activation arenas differ: xa sits in x's rows, x_lo grows)
  if (!xa_in_x)
    ct::report_bool("nf4", "after the merge: bf16 weights + the scratch, no NF4 region" + tag,
                    ua == ub + 2 * largest,
                    std::to_string(ua) + " bytes, bf16 engine " + std::to_string(ub) +
                        " + scratch " + std::to_string(2 * largest));
  lora4j_engine_destroy(a);
  lora4j_engine_destroy(b);
}

}  // namespace

int main() {
  ct::skip_without_gpu();
  int32_t avail = 0;
  char why[512];
  API(lora4j_cuda_available(&avail, why, sizeof why));
  if (!avail) ct::skip(std::string("the CUDA backend is not usable: ") + why);
  uint64_t seed = 1;
  for (bool nested : {false, true})
    for (int32_t dtype : {LORA4J_DTYPE_BF16, LORA4J_DTYPE_F16}) {
      kernel_case(131, 64, nested, dtype, ++seed);
      kernel_case(64 * 256 * 5 + 9, 64, nested, dtype, ++seed);
      kernel_case(1001, 6, nested, dtype, ++seed, 7);  // blocks split the 8-element groups
      kernel_case(4096 * 128 + 3, 128, nested, dtype, ++seed);
    }
  // the Mistral-7B projection shapes: q/o 4096 x 4096, k/v 1024 x 4096, MLP 14336 x 4096
  for (int64_t numel : {4096LL * 4096, 1024LL * 4096, 14336LL * 4096})
    kernel_case(numel, 64, true, LORA4J_DTYPE_BF16, ++seed);
  for (int recompute : {LORA4J_RECOMPUTE_NONE, LORA4J_RECOMPUTE_LAYER})
    for (bool nested : {false, true}) engine_case(nested, recompute);
  engine_case(true, LORA4J_RECOMPUTE_NONE, true);
  if (ct::failures()) {
    std::printf("test_nf4_cuda: %d check(s) FAILED\n", ct::failures());
    return 1;
  }
  std::printf("test_nf4_cuda: all checks passed\n");
  return 0;
}
