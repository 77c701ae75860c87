// The buckets of the gradient all-reduce overlapped with the backward (grad_buckets in
// src/model/layout.cpp, used by the CUDA engine) and lora4j_dist_reduce_in_backward where there
// is no group (CPU, every CI run).
//  - On several layouts (Mistral-7B widths with all seven targets, a subset of targets, one
//    layer) and bucket sizes (one layer, a few elements, 25 MiB, more than the arena): the
//    buckets cover the arena exactly once, from its end down to 0, in the order the backward
//    finishes them; each starts at the first tensor of the layer it waits for, those layers
//    descend to layer 0; each bucket but the last reaches the size and would not without its
//    lowest layer. At 7B widths with 25 MiB: six buckets of five layers and one of two.
//  - A layout whose layers interleave is refused (EINTERNAL), never reduced wrongly.
//  - The C API: a null engine and on outside {0, 1} are EINVAL; on the CPU engine the arming is
//    accepted and ignored: the same gradients, bitwise, and the group-of-one all-reduce after it
//    changes nothing.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "lora4j.h"
#include "model/engine.h"
#include "realwidth_model.h"
#include "test_util.h"
#include "model_config.h"

using testutil::check_true;

namespace {

lora4j_model_config small(int layers) {
  return testutil::model_config(300, 64, 160, layers, 4, 2, 16, 128);
}

// First element of layer l's tensors, and the element count of layer l.
int64_t layer_begin(const lora4j::LoraLayout& l, int layer) {
  for (const lora4j::LoraSpec& t : l.tensors)
    if (t.layer == layer) return t.offset;
  return -1;
}
int64_t layer_numel(const lora4j::LoraLayout& l, int layer) {
  int64_t n = 0;
  for (const lora4j::LoraSpec& t : l.tensors)
    if (t.layer == layer) n += t.numel();
  return n;
}

void check_plan(const std::string& name, const lora4j::ModelShape& s, uint32_t targets,
                int64_t bucket_elems, int expect_buckets) {
  lora4j::LoraLayout l = lora4j::make_lora_layout(s, 16, 2.f, targets);
  std::vector<lora4j::GradBucket> b = lora4j::grad_buckets(l, s.c.num_layers, bucket_elems);
  bool ok =
      !b.empty() && b.front().end == l.total && b.back().begin == 0 && b.back().ready_after == 0;
  std::string why;
  for (size_t i = 0; i < b.size() && ok; ++i) {
    const lora4j::GradBucket& k = b[i];
    if (k.begin >= k.end) why = "empty bucket";
    if (i > 0 && b[i - 1].begin != k.end) why = "gap or overlap";
    if (i > 0 && b[i - 1].ready_after <= k.ready_after) why = "layers not descending";
    if (k.ready_after < 0 || layer_begin(l, k.ready_after) != k.begin)
      why = "does not start at its layer";
    const bool last = i + 1 == b.size();
    if (!last && k.end - k.begin < bucket_elems) why = "smaller than the size";
    if (!last && bucket_elems > 0 &&
        k.end - k.begin - layer_numel(l, k.ready_after) >= bucket_elems)
      why = "larger than needed";
    if (!why.empty()) ok = false;
  }
  if (expect_buckets > 0 && int(b.size()) != expect_buckets)
    why = "expected " + std::to_string(expect_buckets) + " buckets", ok = false;
  check_true(name, ok,
             std::to_string(b.size()) + " bucket(s) over " + std::to_string(l.total) +
                 (why.empty() ? "" : ": " + why));
}

#define API(call)                                                                \
  do {                                                                           \
    int s_ = (call);                                                             \
    if (s_ != LORA4J_OK) {                                                       \
      std::printf("%s failed (%d): %s  FAIL\n", #call, s_, lora4j_last_error()); \
      ++testutil::failures();                                                    \
      return;                                                                    \
    }                                                                            \
  } while (0)

void check_api() {
  check_true("null engine is EINVAL", lora4j_dist_reduce_in_backward(nullptr, 1) == LORA4J_EINVAL,
             lora4j_last_error());
  lora4j_model_config c = small(3);
  lora4j_engine_options o{};
  o.device = LORA4J_DEVICE_CPU;
  o.num_threads = 2;
  lora4j_engine* e = nullptr;
  API(lora4j_engine_create(&c, &o, &e));
  realwidth::load_all(c, {e}, 3);
  const int bad = lora4j_dist_reduce_in_backward(e, 2);
  const std::string msg = lora4j_last_error();
  check_true("on = 2 is EINVAL naming on",
             bad == LORA4J_EINVAL && msg.find("on must be 0 or 1") != std::string::npos, msg);
  realwidth::Batch b = realwidth::make_batch(5, 2, 40, c.vocab_size, realwidth::Shape::PLAIN);
  lora4j_batch v = b.view();
  int64_t n = 0;
  API(lora4j_grad_flat_numel(e, &n));
  const size_t count = static_cast<size_t>(n);
  std::vector<float> plain(count), armed(count), reduced(count);
  double loss = 0;
  int64_t tokens = 0;
  API(lora4j_zero_grad(e));
  API(lora4j_forward_backward(e, &v, 0.01f, &loss, &tokens));
  API(lora4j_grad_get_flat(e, plain.data(), n));
  API(lora4j_zero_grad(e));
  API(lora4j_dist_reduce_in_backward(e, 1));
  API(lora4j_forward_backward(e, &v, 0.01f, &loss, &tokens));
  API(lora4j_grad_get_flat(e, armed.data(), n));
  API(lora4j_dist_allreduce_grad(e));
  API(lora4j_grad_get_flat(e, reduced.data(), n));
  bool nonzero = std::any_of(plain.begin(), plain.end(), [](float x) { return x != 0; });
  check_true("CPU: arming is ignored (same gradients, bitwise)",
             nonzero && std::memcmp(plain.data(), armed.data(), size_t(n) * 4) == 0);
  check_true("CPU: the all-reduce after it changes nothing",
             std::memcmp(plain.data(), reduced.data(), size_t(n) * 4) == 0);
  API(lora4j_dist_reduce_in_backward(e, 0));
  lora4j_engine_destroy(e);
}

}  // namespace

int main() {
  const lora4j::ModelShape m7b(realwidth::mistral7b_v03(32));
  const int64_t mib25 = 25 * 1024 * 1024 / 4;
  {
    lora4j::LoraLayout l = lora4j::make_lora_layout(m7b, 16, 2.f, 127u);
    check_true("7B all-linear r16: 41,943,040 gradients", l.total == 41943040,
               std::to_string(l.total));
  }
  check_plan("7B all-linear, 25 MiB: 6 x 5 layers + 2 layers", m7b, 127u, mib25, 7);
  check_plan("7B all-linear, one bucket per layer", m7b, 127u, 0, 32);
  check_plan("7B q,v only, 25 MiB", m7b, 0x5u, mib25, 0);
  check_plan("7B all-linear, larger than the arena: one bucket", m7b, 127u, int64_t(1) << 40, 1);
  const lora4j::ModelShape s5(small(5)), s1(small(1));
  check_plan("small, every 1000 elements", s5, 127u, 1000, 0);
  check_plan("small, 1 element: one per layer", s5, 127u, 1, 5);
  check_plan("small gate,down only, 2 layers' worth", s5, 0x50u,
             2 * lora4j::make_lora_layout(s5, 16, 2.f, 0x50u).total / 5, 3);
  check_plan("one layer", s1, 127u, mib25, 1);
  {
    // layer 0's B after layer 1's A: not one range per layer
    lora4j::LoraLayout l = lora4j::make_lora_layout(lora4j::ModelShape(small(2)), 4, 1.f, 1u);
    std::swap(l.tensors[1].offset, l.tensors[2].offset);
    int code = 0;
    try {
      lora4j::grad_buckets(l, 2, 0);
    } catch (const lora4j::Error& e) {
      code = e.code();
    }
    check_true("interleaved layers are EINTERNAL", code == LORA4J_EINTERNAL);
  }
  check_api();
  return testutil::finish("test_grad_buckets");
}
