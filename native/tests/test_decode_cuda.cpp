// Decoding through the KV cache (lora4j_decode_start / lora4j_decode_next) on a model wide enough
// for the Hopper gate/up kernel (hidden 1024, MLP 2048, 4 layers, a rank-16 adapter on all seven
// projections), with nine engines:
//   A  the default: a decode call of fewer than 128 rows runs gate and up as two GEMMs and the
//      SwiGLU forward, not the fused kernel (whose 128-row tiles read the weights at about half
//      the card's rate there);
//   B  LORA4J_DECODE_GU_UNFUSED=0: the fused kernel at any row count, as before;
//   C  LORA4J_SWIGLU_GU_FUSED=0: the unfused path everywhere;
//   D  LORA4J_DECODE_GEMV=0: cuBLASLt for the decode calls' one-row products, not gemv.cu;
//   E  LORA4J_DECODE_ATTENTION=0: attention_forward for a decode step, not attention_decode;
//   F  LORA4J_DECODE_FUSED=0: a single-row step's q, k, v, RoPE and gate, up, SwiGLU as separate
//      passes, not gemv_pairs' two launches;
//   G  LORA4J_DECODE_GEMV_SPLIT=0: the adapter's A products (16-48 rows) by gemv's warp a row, not
//      its 8 warps a row;
//   H  LORA4J_DECODE_LORA_TAIL=0: o's and down's LoRA term by lora_b_residual and then the frozen
//      gemv, not one gemv over both (GemvParams::K2);
//   I  LORA4J_DECODE_NORM_A=0: each RMSNorm and its group's LoRA A product (q/k/v, gate/up) in two
//      launches (three with xa's fp16 copy), not rmsnorm_lora_a's one.
// Checked: A's logits at every decode step bit for bit C's (so A took the unfused path for the
// prompt's 20 rows and each single-row step); A's and B's each within 2e-2 of the forward pass's
// logits at the same positions (lora4j_logits over the whole sequence, teacher-forced: the decode
// attention kernel and the GEMMs' shapes differ from the forward's, bf16 roundings apart); and a
// 200-token prompt, over the threshold, gives A and B the same logits bit for bit (both fused);
// D, E, G and H each within 1e-2 of A and 2e-2 of the forward, D and E not bit for bit A (other
// sums), A's decode steps ran o and down as one gemv each and each RMSNorm with its A product
// (its phase times' op names); I bit for bit A at every step (the same sums); F bit
// for bit A at every step (gemv_pairs sums and rounds as the passes it replaces).
// gate/up's outputs can be the same bits fused or not, so the path each engine took is read from
// its phase times' op names (LORA4J_PHASE_TIMES records decode calls too).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "cuda_test_util.h"
#include "lora4j.h"
#include "realwidth_model.h"

namespace {

const char* kSuite = "decode";
using realwidth::create_engine;
using realwidth::load_all;

// An engine made with var=value (none when var is null), its phase times (LORA4J_PHASE_TIMES)
// written to phases when that is given.
lora4j_engine* engine_with(const char* var, const char* value, const lora4j_model_config& c,
                           const std::string& phases = "") {
  if (var) setenv(var, value, 1);
  if (!phases.empty()) setenv("LORA4J_PHASE_TIMES", phases.c_str(), 1);
  lora4j_engine* e = create_engine(c, LORA4J_DEVICE_CUDA, LORA4J_RECOMPUTE_NONE);
  if (var) unsetenv(var);
  unsetenv("LORA4J_PHASE_TIMES");
  return e;
}

// decode_start on seq's first prompt tokens, then decode_next on the next steps - 1: the logits
// of each call, at positions prompt - 1 .. prompt + steps - 2.
std::vector<std::vector<float>> decode_logits(lora4j_engine* e, const std::vector<int32_t>& seq,
                                              int prompt, int steps, int64_t V) {
  std::vector<std::vector<float>> got;
  std::vector<float> l(static_cast<size_t>(V));
  RW_API(lora4j_decode_start(e, seq.data(), prompt, l.data()));
  got.push_back(l);
  for (int s = 0; s < steps - 1; ++s) {
    RW_API(lora4j_decode_next(e, seq[size_t(prompt + s)], l.data()));
    got.push_back(l);
  }
  return got;
}

// The forward pass's logits of tokens (one row), [len, V].
std::vector<float> forward_logits(lora4j_engine* e, const std::vector<int32_t>& tokens, int64_t V) {
  std::vector<int32_t> ones(tokens.size(), 1);
  lora4j_batch b{};
  b.batch = 1;
  b.seq = int32_t(tokens.size());
  b.input_ids = tokens.data();
  b.attention_mask = ones.data();
  std::vector<float> out(tokens.size() * size_t(V));
  RW_API(lora4j_logits(e, &b, out.data(), int64_t(out.size())));
  return out;
}

bool bitwise(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void decode_steps() {
  const lora4j_model_config c = testutil::model_config(1024, 1024, 2048, 4, 8, 2, 128, 1024, 1e4);
  const int64_t V = c.vocab_size;
  const std::string tag = std::to_string(getpid());
  const std::string ph[3] = {"/tmp/lora4j-decode-a-" + tag + ".jsonl",
                             "/tmp/lora4j-decode-b-" + tag + ".jsonl",
                             "/tmp/lora4j-decode-f-" + tag + ".jsonl"};
  for (const std::string& p : ph) std::remove(p.c_str());
  lora4j_engine* e[9] = {engine_with(nullptr, nullptr, c, ph[0]),
                         engine_with("LORA4J_DECODE_GU_UNFUSED", "0", c, ph[1]),
                         engine_with("LORA4J_SWIGLU_GU_FUSED", "0", c),
                         engine_with("LORA4J_DECODE_GEMV", "0", c),
                         engine_with("LORA4J_DECODE_ATTENTION", "0", c),
                         engine_with("LORA4J_DECODE_FUSED", "0", c, ph[2]),
                         engine_with("LORA4J_DECODE_GEMV_SPLIT", "0", c),
                         engine_with("LORA4J_DECODE_LORA_TAIL", "0", c),
                         engine_with("LORA4J_DECODE_NORM_A", "0", c)};
  load_all(c, {e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8]}, 71);
  std::mt19937 rng(72);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(V) - 1);
  const int prompt = 20, steps = 12;
  std::vector<int32_t> seq(size_t(prompt + steps));
  for (int32_t& t : seq) t = tok(rng);
  const std::vector<float> fwd = forward_logits(e[0], seq, V);
  std::vector<std::vector<float>> got[9];  // per engine, per position from prompt - 1 on
  for (int k = 0; k < 9; ++k) got[k] = decode_logits(e[k], seq, prompt, steps, V);
  bool same_ac = true, same[9] = {true, true, true, true, true, true, true, true, true};
  double worst[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0}, worst_to_a[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < got[0].size(); ++i) {
    same_ac = same_ac && bitwise(got[0][i], got[2][i]);
    const size_t pos = size_t(prompt - 1) + i;
    const std::vector<float> ref(fwd.begin() + int64_t(pos) * V,
                                 fwd.begin() + int64_t(pos + 1) * V);
    for (int k = 0; k < 9; ++k) {
      worst[k] = ct::worst_of(worst[k], ct::rel_err(got[k][i], ref));
      same[k] = same[k] && bitwise(got[0][i], got[k][i]);
      worst_to_a[k] = ct::worst_of(worst_to_a[k], ct::rel_err(got[k][i], got[0][i]));
    }
  }
  // the decode steps' one-row products by the GEMV kernel (default) or cuBLASLt
  // (LORA4J_DECODE_GEMV=0), their attention by attention_decode (default) or attention_forward
  // (LORA4J_DECODE_ATTENTION=0), the A products by 8 warps a row (default) or one
  // (LORA4J_DECODE_GEMV_SPLIT=0), o's and down's LoRA term in their gemv (default) or apart
  // (LORA4J_DECODE_LORA_TAIL=0): other sums, so other bits, within bf16 roundings of each other
  // (the A products' sums are rounded to bf16 at once, so G may give the same logits here:
  // test_ops_cuda checks the split order's bits; H's path is read from the phase times below)
  for (int k : {3, 4, 6, 7}) {
    const std::string sw = k == 3   ? "LORA4J_DECODE_GEMV=0"
                           : k == 4 ? "LORA4J_DECODE_ATTENTION=0"
                           : k == 6 ? "LORA4J_DECODE_GEMV_SPLIT=0"
                                    : "LORA4J_DECODE_LORA_TAIL=0";
    if (k == 3 || k == 4)
      ct::report_bool(kSuite, sw + " changes the decode logits' bits (the kernel ran)", !same[k],
                      "");
    ct::report(kSuite, "default decode vs " + sw + ", worst step", worst_to_a[k], 1e-2);
    ct::report(kSuite, sw + " decode vs the forward pass's logits, worst step", worst[k], 2e-2);
  }
  ct::report_bool(kSuite,
                  "default decode logits bitwise the unfused engine's (20-row prompt, 11 steps)",
                  same_ac, "");
  ct::report(kSuite, "default decode vs the forward pass's logits, worst step", worst[0], 2e-2);
  ct::report_bool(kSuite, "LORA4J_DECODE_FUSED=0: logits bitwise the default's (12 calls)", same[5],
                  "");
  ct::report_bool(kSuite, "LORA4J_DECODE_NORM_A=0: logits bitwise the default's (12 calls)",
                  same[8], "");
  ct::report(kSuite, "fused-kernel decode vs the forward pass's logits, worst step", worst[1],
             2e-2);
  // over the threshold both decode with the fused kernel
  std::vector<int32_t> longp(200);
  for (int32_t& t : longp) t = tok(rng);
  std::vector<float> l0(static_cast<size_t>(V)), l1(static_cast<size_t>(V));
  RW_API(lora4j_decode_start(e[0], longp.data(), int32_t(longp.size()), l0.data()));
  RW_API(lora4j_decode_start(e[1], longp.data(), int32_t(longp.size()), l1.data()));
  ct::report_bool(kSuite, "a 200-token prompt: default and fused-kernel logits bitwise equal",
                  bitwise(l0, l1), "");
  for (lora4j_engine* x : e) RW_API(lora4j_engine_destroy(x));
  // Which path each decode took, by the op names of the decode calls' phase times (the prompt's
  // call is left out as a first step; the single-row steps and the 200-token prompt count):
  // gate/up's results can be the same bits either way, so the logits alone cannot tell.
  const std::set<std::string> a = ct::phase_op_names(ph[0]), b = ct::phase_op_names(ph[1]),
                              f = ct::phase_op_names(ph[2]);
  const std::string fused = "mlp.gate_proj + up_proj + swiglu forward";
  int dev = 0, major = 0, minor = 0;
  CT_CUDA(cudaGetDevice(&dev));
  CT_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CT_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  const bool sm90 = major == 9 && minor == 0;
  ct::report_bool(kSuite, "default decode steps ran each RMSNorm with its group's A product",
                  a.count("rmsnorm + lora_A forward (decode)") > 0, "");
  ct::report_bool(kSuite, "default decode steps ran o and down with their LoRA term as one gemv",
                  a.count("o_proj + lora_B + residual (decode)") > 0 &&
                      a.count("down_proj + lora_B + residual (decode)") > 0,
                  "");
  ct::report_bool(kSuite, "default decode steps ran gemv_pairs (q/k/v + RoPE, gate/up + SwiGLU)",
                  a.count("q/k/v + rope (decode)") > 0 && a.count("gate/up + swiglu (decode)") > 0,
                  "");
  ct::report_bool(
      kSuite, "LORA4J_DECODE_FUSED=0: gate, up and the SwiGLU forward apart, no gemv_pairs",
      f.count("swiglu forward") > 0 && f.count("mlp.gate_proj") > 0 &&
          f.count("q/k/v + rope (decode)") == 0 && f.count("gate/up + swiglu (decode)") == 0,
      "");
  ct::report_bool(kSuite, "the 200-token prompt ran the fused op on an sm_90 device",
                  (a.count(fused) > 0) == sm90, sm90 ? "sm_90" : "not sm_90");
  ct::report_bool(kSuite, "LORA4J_DECODE_GU_UNFUSED=0: only the fused op on an sm_90 device",
                  sm90 ? b.count(fused) > 0 && b.count("swiglu forward") == 0 : b.count(fused) == 0,
                  sm90 ? "sm_90" : "not sm_90");
  // the default engine's decode calls read decode_start's fp16 q/k weights (qk_cache below)
  ct::report_bool(kSuite, "default decode steps converted no q/k weight to fp16",
                  a.count("q/k weights to f16") == 0, "");
}

// The q/k weights' fp16 conversions kept by decode_start (build_decode_w16) against
// LORA4J_DECODE_QK_CACHE=0 (converted before each q / k GEMM), same model and adapter: the logits
// of a 20-token prompt and 11 decode steps bit for bit; the kept engine's phase times name no
// conversion, the other's do (so the fp16 q/k path ran at all). Then q's lora_B of layer 0 (folded
// into W's columns) is set to new values between two decode steps, as an optimizer step would
// change it: the next step's logits still bit for bit the per-call engine's (the kept conversions
// dropped, not read stale), and unlike the logits the step gives with the old values; and a new
// decode_start (conversions made again) bit for bit too.
void qk_cache() {
  const lora4j_model_config c = testutil::model_config(1024, 1024, 2048, 4, 8, 2, 128, 1024, 1e4);
  const int64_t V = c.vocab_size;
  const std::string tag = std::to_string(getpid());
  const std::string ph[2] = {"/tmp/lora4j-decode-qa-" + tag + ".jsonl",
                             "/tmp/lora4j-decode-qd-" + tag + ".jsonl"};
  for (const std::string& p : ph) std::remove(p.c_str());
  lora4j_engine* e[4] = {
      engine_with(nullptr, nullptr, c, ph[0]), engine_with("LORA4J_DECODE_QK_CACHE", "0", c, ph[1]),
      engine_with(nullptr, nullptr, c), engine_with("LORA4J_DECODE_QK_CACHE", "0", c)};
  load_all(c, {e[0], e[1], e[2], e[3]}, 81);
  std::mt19937 rng(82);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(V) - 1);
  const int prompt = 20, steps = 12;
  std::vector<int32_t> seq(size_t(prompt + steps));
  for (int32_t& t : seq) t = tok(rng);
  std::vector<float> l[4];
  for (auto& x : l) x.assign(static_cast<size_t>(V), 0.f);
  bool same = true;
  for (int k = 0; k < 4; ++k) RW_API(lora4j_decode_start(e[k], seq.data(), prompt, l[k].data()));
  same = bitwise(l[0], l[1]) && bitwise(l[2], l[3]);
  for (int s = 0; s < steps - 1; ++s) {
    for (int k = 0; k < 2; ++k)
      RW_API(lora4j_decode_next(e[k], seq[size_t(prompt + s)], l[k].data()));
    same = same && bitwise(l[0], l[1]);
  }
  ct::report_bool(kSuite, "kept fp16 q/k weights: logits bitwise per-call conversion's (12 calls)",
                  same, "");
  // engines 2 and 3: a decode step after q's lora_B of layer 0 changed
  int32_t count = 0;
  RW_API(lora4j_lora_count(e[2], &count));
  std::string qb;
  int64_t rows = 0, cols = 0;
  for (int32_t i = 0; i < count && qb.empty(); ++i) {
    char name[256];
    RW_API(lora4j_lora_info(e[2], i, name, sizeof name, &rows, &cols));
    const std::string n(name);
    if (n.find("layers.0.") != std::string::npos && n.find("q_proj.lora_B") != std::string::npos)
      qb = n;
  }
  std::vector<float> stale(static_cast<size_t>(V));
  RW_API(lora4j_decode_next(e[2], seq[size_t(prompt)], stale.data()));  // old values, then undone
  RW_API(lora4j_decode_start(e[2], seq.data(), prompt, l[2].data()));
  std::vector<float> b(static_cast<size_t>(rows * cols));
  for (size_t k = 0; k < b.size(); ++k) b[k] = 0.5f * std::sin(0.37f * float(k));
  for (int k = 2; k < 4; ++k)
    RW_API(lora4j_lora_set(e[k], LORA4J_STATE_PARAM, qb.c_str(), LORA4J_DTYPE_F32, b.data(),
                           int64_t(b.size())));
  for (int k = 2; k < 4; ++k) RW_API(lora4j_decode_next(e[k], seq[size_t(prompt)], l[k].data()));
  ct::report_bool(kSuite, "after lora_set of " + qb + ": the step bitwise per-call conversion's",
                  !qb.empty() && bitwise(l[2], l[3]) && !bitwise(l[2], stale), "");
  for (int k = 2; k < 4; ++k) RW_API(lora4j_decode_start(e[k], seq.data(), prompt, l[k].data()));
  ct::report_bool(kSuite, "then a new decode_start: bitwise per-call conversion's",
                  bitwise(l[2], l[3]), "");
  for (lora4j_engine* x : e) RW_API(lora4j_engine_destroy(x));
  const std::set<std::string> a = ct::phase_op_names(ph[0]), d = ct::phase_op_names(ph[1]);
  ct::report_bool(kSuite, "kept: no q/k weight converted in a decode call; per call: converted",
                  a.count("q/k weights to f16") == 0 && d.count("q/k weights to f16") > 0, "");
}

// Programmatic dependent launch of a decode call's kernels (the default on sm_90: each RMSNorm,
// GEMV, gemv_pairs and attention kernel may start while the one before it finishes, reading only
// weights until it waits) against LORA4J_DECODE_PDL=0 (plain launches), neither with phase times
// (which turn it off): logits bit for bit at every call, after a 20-token prompt (one share of
// keys: no merge kernel) and after a 300-token prompt (ten shares and the merge), 40 calls each.
// A kernel reading its input before the previous one wrote it would show as other bits.
void pdl() {
  const lora4j_model_config c = testutil::model_config(1024, 1024, 2048, 4, 8, 2, 128, 1024, 1e4);
  const int64_t V = c.vocab_size;
  lora4j_engine* e[2] = {engine_with(nullptr, nullptr, c),
                         engine_with("LORA4J_DECODE_PDL", "0", c)};
  load_all(c, {e[0], e[1]}, 91);
  std::mt19937 rng(92);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(V) - 1);
  for (int prompt : {20, 300}) {
    const int calls = 40;
    std::vector<int32_t> seq(size_t(prompt + calls));
    for (int32_t& t : seq) t = tok(rng);
    std::vector<float> l[2];
    for (auto& x : l) x.assign(static_cast<size_t>(V), 0.f);
    for (int k = 0; k < 2; ++k) RW_API(lora4j_decode_start(e[k], seq.data(), prompt, l[k].data()));
    bool same = bitwise(l[0], l[1]);
    for (int s = 0; s < calls - 1; ++s) {
      for (int k = 0; k < 2; ++k)
        RW_API(lora4j_decode_next(e[k], seq[size_t(prompt + s)], l[k].data()));
      same = same && bitwise(l[0], l[1]);
    }
    ct::report_bool(kSuite,
                    "LORA4J_DECODE_PDL=0: logits bitwise the default's (" + std::to_string(prompt) +
                        "-token prompt, 40 calls)",
                    same, "");
  }
  for (lora4j_engine* x : e) RW_API(lora4j_engine_destroy(x));
}

// lora4j_decode_greedy through the CUDA backend (the plugin's ABI 5 entry): 30 tokens after a
// 20-token prompt in chunks of 1, 2, 4, 8 and 15 and in one call of 30, on the device (each argmax
// fed to the next step there: the default) and with LORA4J_DECODE_GREEDY_DEVICE=0 (decode_next and
// the argmax on the host, step by step), both the tokens of decode_next and the argmax of each
// logits; a chunk that meets eos_id stops there and leaves the cache at that token (the next chunk
// continues the sequence); a chunk past the cache's end is refused.
void greedy() {
  const lora4j_model_config c = testutil::model_config(1024, 1024, 2048, 4, 8, 2, 128, 1024, 1e4);
  const int64_t V = c.vocab_size;
  lora4j_engine* e[2] = {engine_with(nullptr, nullptr, c),
                         engine_with("LORA4J_DECODE_GREEDY_DEVICE", "0", c)};
  load_all(c, {e[0], e[1]}, 95);
  std::mt19937 rng(96);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(V) - 1);
  std::vector<int32_t> prompt(20);
  for (int32_t& t : prompt) t = tok(rng);
  std::vector<float> l(static_cast<size_t>(V));
  auto argmax = [&] { return int32_t(std::max_element(l.begin(), l.end()) - l.begin()); };
  std::vector<int32_t> want;
  RW_API(lora4j_decode_start(e[0], prompt.data(), int32_t(prompt.size()), l.data()));
  want.push_back(argmax());
  while (want.size() < 31) {
    RW_API(lora4j_decode_next(e[0], want.back(), l.data()));
    want.push_back(argmax());
  }
  for (int k = 0; k < 2; ++k) {
    std::vector<int32_t> got;
    RW_API(lora4j_decode_start(e[k], prompt.data(), int32_t(prompt.size()), l.data()));
    got.push_back(argmax());
    for (int32_t n : {1, 2, 4, 8, 15}) {
      std::vector<int32_t> out(static_cast<size_t>(n));
      int32_t produced = 0;
      RW_API(lora4j_decode_greedy(e[k], got.back(), n, -1, out.data(), &produced));
      got.insert(got.end(), out.begin(), out.begin() + produced);
    }
    const std::string how = k == 0 ? "on the device" : "LORA4J_DECODE_GREEDY_DEVICE=0";
    ct::report_bool(kSuite, "decode_greedy " + how + ": decode_next's argmax tokens (30 steps)",
                    got == want, "");
    // 30 in one call: two runs of queued steps on the device
    std::vector<int32_t> all(30);
    int32_t produced_all = 0;
    RW_API(lora4j_decode_start(e[k], prompt.data(), int32_t(prompt.size()), l.data()));
    RW_API(lora4j_decode_greedy(e[k], want[0], 30, -1, all.data(), &produced_all));
    ct::report_bool(kSuite, "decode_greedy " + how + ": 30 in one call, the same tokens",
                    produced_all == 30 && std::equal(all.begin(), all.end(), want.begin() + 1), "");
    // eos_id inside a chunk of 20: produced up to its first occurrence, then a chunk of 5 goes on
    const int32_t eos = want[12];
    const int32_t at = int32_t(std::find(want.begin() + 1, want.end(), eos) - want.begin());
    RW_API(lora4j_decode_start(e[k], prompt.data(), int32_t(prompt.size()), l.data()));
    std::vector<int32_t> out(20), more(5);
    int32_t produced = 0, produced2 = 0;
    RW_API(lora4j_decode_greedy(e[k], want[0], 20, eos, out.data(), &produced));
    RW_API(lora4j_decode_greedy(e[k], out[size_t(produced - 1)], 5, -1, more.data(), &produced2));
    ct::report_bool(
        kSuite, "decode_greedy " + how + ": stops after eos_id, the next call goes on from it",
        produced == at && std::equal(out.begin(), out.begin() + at, want.begin() + 1) &&
            produced2 == 5 && std::equal(more.begin(), more.end(), want.begin() + at + 1),
        "");
  }
  // past the cache's 1024 positions: refused
  std::vector<int32_t> longp(1020);
  for (int32_t& t : longp) t = tok(rng);
  RW_API(lora4j_decode_start(e[0], longp.data(), int32_t(longp.size()), l.data()));
  std::vector<int32_t> out(8);
  int32_t produced = 0;
  const int st = lora4j_decode_greedy(e[0], argmax(), 8, -1, out.data(), &produced);
  ct::report_bool(kSuite, "decode_greedy on the device: 8 more past 1020 of 1024 refused",
                  st != LORA4J_OK && produced == 0, "");
  for (lora4j_engine* x : e) RW_API(lora4j_engine_destroy(x));
}

}  // namespace

// Decoding with an adapter on part of the projections, as users train them: PEFT's default for
// Mistral (q_proj, v_proj), the attention's four, the MLP's three. Per target set four engines
// (the default, LORA4J_DECODE_FUSED=0, LORA4J_DECODE_GEMV=0, LORA4J_DECODE_NORM_FOLD=0), a
// 20-token prompt and 11 steps: each engine's logits within 2e-2 of the forward pass's at the
// same positions, the default's bit for bit LORA4J_DECODE_FUSED=0's (gemv_pairs sums each row as
// gemv does, whatever K each projection's fold gives it, and its folded RMSNorm normalizes as
// rmsnorm_forward does) and LORA4J_DECODE_NORM_FOLD=0's, within 1e-2 of cuBLASLt's products
// (LORA4J_DECODE_GEMV=0); the default's phase times name the folded RMSNorm for exactly the
// groups without an adapter. test_decode_cuda's other cases adapt all seven projections.
void decode_targets() {
  const lora4j_model_config c = testutil::model_config(1024, 1024, 2048, 4, 8, 2, 128, 1024, 1e4);
  const int64_t V = c.vocab_size;
  struct Set {
    uint32_t mask;
    const char* name;
  };
  const Set sets[] = {
      {LORA4J_TARGET_Q | LORA4J_TARGET_V, "q, v"},
      {LORA4J_TARGET_Q | LORA4J_TARGET_K | LORA4J_TARGET_V | LORA4J_TARGET_O, "q, k, v, o"},
      {LORA4J_TARGET_GATE | LORA4J_TARGET_UP | LORA4J_TARGET_DOWN, "gate, up, down"}};
  for (const Set& t : sets) {
    const std::string ph =
        "/tmp/lora4j-decode-t" + std::to_string(t.mask) + "-" + std::to_string(getpid()) + ".jsonl";
    std::remove(ph.c_str());
    lora4j_engine* e[4] = {
        engine_with(nullptr, nullptr, c, ph), engine_with("LORA4J_DECODE_FUSED", "0", c),
        engine_with("LORA4J_DECODE_GEMV", "0", c), engine_with("LORA4J_DECODE_NORM_FOLD", "0", c)};
    load_all(c, {e[0], e[1], e[2], e[3]}, 91, t.mask);
    std::mt19937 rng(92);
    std::uniform_int_distribution<int32_t> tok(3, int32_t(V) - 1);
    const int prompt = 20, steps = 12;
    std::vector<int32_t> seq(size_t(prompt + steps));
    for (int32_t& x : seq) x = tok(rng);
    const std::vector<float> fwd = forward_logits(e[0], seq, V);
    std::vector<std::vector<float>> got[4];
    for (int k = 0; k < 4; ++k) got[k] = decode_logits(e[k], seq, prompt, steps, V);
    bool same = true, same_fold = true;
    double worst[3] = {0, 0, 0}, to_cublas = 0;
    for (size_t i = 0; i < got[0].size(); ++i) {
      const size_t pos = size_t(prompt - 1) + i;
      const std::vector<float> ref(fwd.begin() + int64_t(pos) * V,
                                   fwd.begin() + int64_t(pos + 1) * V);
      for (int k = 0; k < 3; ++k) worst[k] = ct::worst_of(worst[k], ct::rel_err(got[k][i], ref));
      same = same && bitwise(got[0][i], got[1][i]);
      same_fold = same_fold && bitwise(got[0][i], got[3][i]);
      to_cublas = ct::worst_of(to_cublas, ct::rel_err(got[2][i], got[0][i]));
    }
    const std::string tag = std::string(" (adapter on ") + t.name + ")";
    ct::report(kSuite, "default decode vs the forward pass's logits, worst step" + tag, worst[0],
               2e-2);
    ct::report(kSuite, "LORA4J_DECODE_FUSED=0 decode vs the forward pass's logits" + tag, worst[1],
               2e-2);
    ct::report(kSuite, "LORA4J_DECODE_GEMV=0 decode vs the forward pass's logits" + tag, worst[2],
               2e-2);
    ct::report_bool(kSuite, "default decode logits bitwise LORA4J_DECODE_FUSED=0's" + tag, same,
                    "");
    ct::report(kSuite, "default decode vs LORA4J_DECODE_GEMV=0, worst step" + tag, to_cublas, 1e-2);
    ct::report_bool(kSuite, "default decode logits bitwise LORA4J_DECODE_NORM_FOLD=0's" + tag,
                    same_fold, "");
    for (lora4j_engine* x : e) RW_API(lora4j_engine_destroy(x));
    // the group without an adapter took the RMSNorm inside gemv_pairs' launch, the other not
    const std::set<std::string> ops = ct::phase_op_names(ph);
    const bool qkv_bare = !(t.mask & (LORA4J_TARGET_Q | LORA4J_TARGET_K | LORA4J_TARGET_V)),
               gu_bare = !(t.mask & (LORA4J_TARGET_GATE | LORA4J_TARGET_UP));
    ct::report_bool(kSuite,
                    "default decode folded the RMSNorm of the groups without an adapter" + tag,
                    (ops.count("rmsnorm + q/k/v + rope (decode)") > 0) == qkv_bare &&
                        (ops.count("rmsnorm + gate/up + swiglu (decode)") > 0) == gu_bare,
                    "");
  }
}

int main() {
  ct::require_cuda_backend(kSuite);
  decode_steps();
  qk_cache();
  pdl();
  greedy();
  decode_targets();
  std::printf("test_decode_cuda: %d failure(s)\n", ct::failures());
  return ct::failures() == 0 ? 0 : 1;
}
