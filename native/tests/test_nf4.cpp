// NF4 weights (lora4j_nf4_weight, bitsandbytes' layout) on the CPU:
//  - lora4j_nf4_dequantize against values written out by hand (block order, the earlier element
//    in the high nibble, a partial last block, an odd element count) and against a loop of this
//    file on random data, plain and double-quantized scales, bf16/fp16/fp32 results;
//  - lora4j_engine_set_weight_nf4 refuses bad input with a message naming the weight;
//  - a CPU engine given NF4 projections computes exactly what one given the dequantized weights
//    computes: loss, logits, every LoRA gradient, three AdamW steps (bitwise).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "lora4j.h"
#include "nf4_test_util.h"
#include "test_util.h"
#include "model_config.h"

using testutil::check_err;
using testutil::check_true;

namespace {

void expect(const std::string& what, int rc, int code, const std::string& needle) {
  std::string msg = lora4j_last_error();
  bool ok = rc == code && msg.find(needle) != std::string::npos;
  check_true(
      what, ok,
      "status " + std::to_string(rc) + " (want " + std::to_string(code) + "), message: " + msg);
}

#define API(call)                                                          \
  do {                                                                     \
    int s_ = (call);                                                       \
    if (s_ != LORA4J_OK) {                                                 \
      std::printf("%s failed (%d): %s\n", #call, s_, lora4j_last_error()); \
      std::exit(2);                                                        \
    }                                                                      \
  } while (0)

float bf16_round(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7FFFu + ((x >> 16) & 1u);
  x &= 0xFFFF0000u;
  std::memcpy(&f, &x, 4);
  return f;
}

// The definition, written independently of model/nf4.cpp: byte j holds elements 2j (high
// nibble) and 2j + 1 (low nibble); element i belongs to block i / blocksize.
std::vector<float> reference(const nf4test::Nf4Data& d) {
  const int64_t blocks = (d.numel + d.blocksize - 1) / d.blocksize;
  std::vector<float> scale(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    if (!d.nested) {
      scale[size_t(b)] = d.absmax[size_t(b)];
    } else {
      volatile float p = d.nested_table[d.absmax_codes[size_t(b)]] *
                         d.nested_absmax[size_t(b / d.nested_blocksize)];
      volatile float s = p + d.offset;
      scale[size_t(b)] = s;
    }
  }
  std::vector<float> out(static_cast<size_t>(d.numel));
  for (int64_t j = 0; j < int64_t(d.codes.size()); ++j) {
    const int pair[2] = {d.codes[size_t(j)] >> 4, d.codes[size_t(j)] & 15};
    for (int k = 0; k < 2; ++k) {
      const int64_t i = 2 * j + k;
      if (i >= d.numel) break;
      float v = d.table[size_t(pair[k])] * scale[size_t(i / d.blocksize)];
      if (d.dtype == LORA4J_DTYPE_BF16) v = bf16_round(v);
      if (d.dtype == LORA4J_DTYPE_F16) v = float(static_cast<_Float16>(v));
      out[size_t(i)] = v;
    }
  }
  return out;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void hand_written() {
  nf4test::Nf4Data d;
  d.numel = 131;  // two whole blocks of 64, a partial block of 3, an odd count
  d.blocksize = 64;
  d.dtype = LORA4J_DTYPE_F32;
  d.table.assign(nf4test::nf4_table(), nf4test::nf4_table() + 16);
  d.codes.assign(66, 0x77);  // code 7 is 0.0
  d.absmax = {2.f, 4.f, 8.f};
  d.codes[0] = 0xF0;   // element 0: code 15 (1.0) in the high nibble, element 1: code 0 (-1.0)
  d.codes[32] = 0x8E;  // elements 64, 65: codes 8 and 14, scale 4
  d.codes[64] = 0x1F;  // elements 128, 129: codes 1 and 15, scale 8 (the partial block)
  d.codes[65] = 0xF3;  // element 130: code 15; the low nibble is padding, never read
  lora4j_nf4_weight w = d.view();
  std::vector<float> out(131, -99.f);
  API(lora4j_nf4_dequantize(&w, out.data()));
  const float* t = nf4test::nf4_table();
  check_true("hand: element 0 = table[15] * absmax[0] (high nibble first)", out[0] == 2.f);
  check_true("hand: element 1 = table[0] * absmax[0] (low nibble second)", out[1] == -2.f);
  check_true("hand: element 2 = 0 (code 7)", out[2] == 0.f);
  check_true("hand: element 63 uses block 0, element 64 block 1",
             out[63] == 0.f && out[64] == t[8] * 4.f);
  check_true("hand: element 65 = table[14] * absmax[1]", out[65] == t[14] * 4.f);
  check_true("hand: elements 128, 129 in the partial block",
             out[128] == t[1] * 8.f && out[129] == 8.f);
  check_true("hand: element 130 = high nibble of the last byte", out[130] == 8.f);
}

void random_against_reference() {
  uint64_t seed = 1;
  for (int64_t numel : {64LL, 130LL, 4097LL, 64LL * 256 * 3 + 17})
    for (int32_t bs : {64, 128, 6})
      for (bool nested : {false, true})
        for (int32_t dtype : {LORA4J_DTYPE_F32, LORA4J_DTYPE_BF16, LORA4J_DTYPE_F16}) {
          nf4test::Nf4Data d =
              nf4test::random_nf4(numel, bs, nested, ++seed, 0.05f, nested && bs == 6 ? 7 : 256);
          d.dtype = dtype;
          lora4j_nf4_weight w = d.view();
          std::vector<float> out(static_cast<size_t>(numel));
          API(lora4j_nf4_dequantize(&w, out.data()));
          char name[160];
          std::snprintf(name, sizeof name, "dequantize = definition: numel %lld, block %d, %s, %s",
                        (long long)numel, bs, nested ? "double-quantized" : "plain",
                        dtype == LORA4J_DTYPE_F32    ? "f32"
                        : dtype == LORA4J_DTYPE_BF16 ? "bf16"
                                                     : "f16");
          check_true(name, bitwise_equal(out, reference(d)));
        }
}

using nf4test::Weight;
using nf4test::weights;

void errors() {
  lora4j_model_config c = testutil::tiny_config();
  lora4j_engine_options o{};
  lora4j_engine* e = nullptr;
  API(lora4j_engine_create(&c, &o, &e));
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  nf4test::Nf4Data d = nf4test::random_nf4(16 * 16, 64, true, 7);
  lora4j_nf4_weight w = d.view();
  expect("nf4: a norm weight is refused", lora4j_engine_set_weight_nf4(e, "model.norm.weight", &w),
         LORA4J_EINVAL, "not a projection");
  expect("nf4: the LM head is refused", lora4j_engine_set_weight_nf4(e, "lm_head.weight", &w),
         LORA4J_EINVAL, "not a projection");
  expect("nf4: an unknown name is refused",
         lora4j_engine_set_weight_nf4(e, "model.layers.9.self_attn.q_proj.weight", &w),
         LORA4J_EINVAL, "no frozen weight named");
  lora4j_nf4_weight bad = w;
  bad.numel = 255;
  expect("nf4: a wrong element count names the weight",
         lora4j_engine_set_weight_nf4(e, q.c_str(), &bad), LORA4J_EINVAL, q + "' has 256 elements");
  bad = w;
  bad.blocksize = 63;
  expect("nf4: an odd blocksize is refused", lora4j_engine_set_weight_nf4(e, q.c_str(), &bad),
         LORA4J_EINVAL, "blocksize must be even");
  bad = w;
  bad.codes = nullptr;
  expect("nf4: null codes", lora4j_engine_set_weight_nf4(e, q.c_str(), &bad), LORA4J_EINVAL,
         "codes is null");
  bad = w;
  bad.nested_absmax = nullptr;
  expect("nf4: double quantization without nested_absmax",
         lora4j_engine_set_weight_nf4(e, q.c_str(), &bad), LORA4J_EINVAL, "nested_absmax is null");
  bad = w;
  bad.dtype = 7;
  expect("nf4: a bad dtype", lora4j_engine_set_weight_nf4(e, q.c_str(), &bad), LORA4J_EINVAL,
         "dtype must be");
  std::vector<float> table = d.table;
  table[3] = NAN;
  bad = w;
  bad.code_table = table.data();
  expect("nf4: a code table value that is not finite",
         lora4j_engine_set_weight_nf4(e, q.c_str(), &bad), LORA4J_EINVAL, "code_table[3]");
  std::vector<float> nested = d.nested_absmax;
  nested[0] = INFINITY;
  bad = w;
  bad.nested_absmax = nested.data();
  expect("nf4: a nested absmax that is not finite names the weight",
         lora4j_engine_set_weight_nf4(e, q.c_str(), &bad), LORA4J_EINVAL,
         "NF4 weight '" + q + "': nested_absmax[0]");
  expect("nf4: null weight", lora4j_engine_set_weight_nf4(e, q.c_str(), nullptr), LORA4J_EINVAL,
         "weight is null");
  expect("nf4: dequantize of null", lora4j_nf4_dequantize(&w, nullptr), LORA4J_EINVAL,
         "out is null");
  lora4j_engine_destroy(e);
}

// Two CPU engines: `a` holds the projections in NF4, `b` the dequantized weights given as fp32.
void engine_equivalence(bool nested) {
  lora4j_model_config c = testutil::tiny_config();
  lora4j_engine_options o{};
  lora4j_engine *a = nullptr, *b = nullptr;
  API(lora4j_engine_create(&c, &o, &a));
  API(lora4j_engine_create(&c, &o, &b));
  testutil::Rng rng(11);
  uint64_t seed = nested ? 100 : 200;
  std::vector<Weight> ws = weights(c);
  for (const Weight& w : ws) {
    if (w.slot < LORA4J_SLOT_INPUT_NORM) {
      nf4test::Nf4Data d = nf4test::random_nf4(w.numel, 64, nested, ++seed, 0.3f);
      lora4j_nf4_weight v = d.view();
      std::vector<float> deq(size_t(w.numel));
      API(lora4j_nf4_dequantize(&v, deq.data()));
      API(lora4j_engine_set_weight_nf4(a, w.name.c_str(), &v));
      API(lora4j_engine_set_weight(b, w.name.c_str(), LORA4J_DTYPE_F32, deq.data(), w.numel));
      std::vector<float> back(size_t(w.numel));
      API(lora4j_engine_get_weight(a, w.name.c_str(), back.data(), w.numel));
      if (w.name == "model.layers.1.mlp.down_proj.weight")
        check_true(std::string("engine holds the dequantized weight") + (nested ? " (nested)" : ""),
                   bitwise_equal(back, deq));
    } else {
      std::vector<float> v(size_t(w.numel));
      rng.fill(v, -0.5f, 0.5f);
      if (w.slot == LORA4J_SLOT_INPUT_NORM || w.slot == LORA4J_SLOT_POST_ATTN_NORM ||
          w.slot == LORA4J_SLOT_FINAL_NORM)
        for (float& x : v) x += 1.f;
      API(lora4j_engine_set_weight(a, w.name.c_str(), LORA4J_DTYPE_F32, v.data(), w.numel));
      API(lora4j_engine_set_weight(b, w.name.c_str(), LORA4J_DTYPE_F32, v.data(), w.numel));
    }
  }
  for (lora4j_engine* e : {a, b}) API(lora4j_lora_attach(e, 4, 2.f, 127u));
  int32_t n = 0;
  API(lora4j_lora_count(a, &n));
  for (int32_t i = 0; i < n; ++i) {
    char name[256];
    int64_t r = 0, cc = 0;
    API(lora4j_lora_info(a, i, name, sizeof name, &r, &cc));
    std::vector<float> v(size_t(r * cc));
    rng.fill(v, -0.2f, 0.2f);
    for (lora4j_engine* e : {a, b})
      API(lora4j_lora_set(e, LORA4J_STATE_PARAM, name, LORA4J_DTYPE_F32, v.data(), r * cc));
  }
  const int B = 2, S = 6;
  std::vector<int32_t> ids(B * S), labels(B * S);
  for (int i = 0; i < B * S; ++i) {
    ids[size_t(i)] = int32_t(rng.below(c.vocab_size));
    labels[size_t(i)] = i % 5 == 0 ? -100 : int32_t(rng.below(c.vocab_size));
  }
  lora4j_batch batch{B, S, ids.data(), nullptr, labels.data(), nullptr, nullptr};
  const std::string tag = nested ? " (double-quantized)" : " (plain absmax)";
  std::vector<float> la(size_t(B * S * c.vocab_size)), lb(la.size());
  API(lora4j_logits(a, &batch, la.data(), int64_t(la.size())));
  API(lora4j_logits(b, &batch, lb.data(), int64_t(lb.size())));
  check_true("NF4 engine logits = dequantized engine" + tag, bitwise_equal(la, lb));
  lora4j_adamw opt{1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f};
  for (int step = 0; step < 3; ++step) {
    double lsa = 0, lsb = 0;
    int64_t ta = 0, tb = 0;
    API(lora4j_zero_grad(a));
    API(lora4j_zero_grad(b));
    API(lora4j_forward_backward(a, &batch, 0.1f, &lsa, &ta));
    API(lora4j_forward_backward(b, &batch, 0.1f, &lsb, &tb));
    check_true("step " + std::to_string(step) + ": loss equal" + tag, lsa == lsb && ta == tb);
    bool grads = true;
    for (int32_t i = 0; i < n; ++i) {
      char name[256];
      int64_t r = 0, cc = 0;
      API(lora4j_lora_info(a, i, name, sizeof name, &r, &cc));
      std::vector<float> ga(size_t(r * cc)), gb(ga.size());
      API(lora4j_lora_get(a, LORA4J_STATE_GRAD, name, ga.data(), r * cc));
      API(lora4j_lora_get(b, LORA4J_STATE_GRAD, name, gb.data(), r * cc));
      grads = grads && bitwise_equal(ga, gb);
    }
    check_true("step " + std::to_string(step) + ": every LoRA gradient equal" + tag, grads);
    lora4j_step_result ra{}, rb{};
    API(lora4j_optimizer_step(a, &opt, &ra));
    API(lora4j_optimizer_step(b, &opt, &rb));
  }
  bool params = true;
  for (int32_t i = 0; i < n; ++i) {
    char name[256];
    int64_t r = 0, cc = 0;
    API(lora4j_lora_info(a, i, name, sizeof name, &r, &cc));
    std::vector<float> pa(size_t(r * cc)), pb(pa.size());
    API(lora4j_lora_get(a, LORA4J_STATE_PARAM, name, pa.data(), r * cc));
    API(lora4j_lora_get(b, LORA4J_STATE_PARAM, name, pb.data(), r * cc));
    params = params && bitwise_equal(pa, pb);
  }
  check_true("three AdamW steps: every LoRA parameter equal" + tag, params);
  lora4j_engine_destroy(a);
  lora4j_engine_destroy(b);
}

}  // namespace

int main() {
  hand_written();
  random_against_reference();
  errors();
  engine_equivalence(false);
  engine_equivalence(true);
  return testutil::finish("test_nf4");
}
