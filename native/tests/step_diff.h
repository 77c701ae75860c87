// One forward_backward of a realwidth::Batch from zeroed gradients, and how far two such steps'
// LoRA gradients are apart: for the CUDA tests that run the same calls on several engines
// (test_offload_cuda, test_graphs_cuda).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cuda_test_util.h"
#include "lora4j.h"
#include "lora_state.h"
#include "realwidth_model.h"

namespace realwidth {

struct Step {
  double loss = 0;
  int64_t tokens = 0;
  std::vector<std::pair<std::string, std::vector<float>>> grads;
};

// zero_grad, then forward_backward of b (grad scale 1e-3); the loss, counted tokens and every
// LoRA gradient.
inline Step step(lora4j_engine* e, const Batch& b) {
  Step s;
  lora4j_batch v = b.view();
  RW_API(lora4j_zero_grad(e));
  RW_API(lora4j_forward_backward(e, &v, 1e-3f, &s.loss, &s.tokens));
  s.grads = testutil::lora_state(e, LORA4J_STATE_GRAD);
  return s;
}

// The worst norm-wise relative error over the LoRA gradient tensors of a against ref (NaN when
// the tensors do not line up), and how many elements differ in their bits.
inline std::pair<double, int64_t> grad_diff(const Step& a, const Step& ref) {
  if (a.grads.size() != ref.grads.size()) return {NAN, -1};
  double worst = 0;
  int64_t bits = 0;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    const std::vector<float>& x = a.grads[i].second;
    const std::vector<float>& y = ref.grads[i].second;
    if (x.size() != y.size() || a.grads[i].first != ref.grads[i].first) return {NAN, -1};
    worst = ct::worst_of(worst, ct::rel_err(x, y));
    for (size_t k = 0; k < x.size(); ++k) bits += std::memcmp(&x[k], &y[k], 4) != 0;
  }
  return {worst, bits};
}

// One call's steps on three engines: [0] the reference, [1] a second engine like it (the control:
// what two runs of one engine differ by), [2] the engine under test (`tested` names it). Reports
// [2]'s loss and counted tokens against [0]'s, bit for bit (the forward is deterministic), and
// prints both gradient differences against [0]; returns them.
struct ThreeWay {
  double ctl = 0, test = 0;
  int64_t ctl_bits = 0, test_bits = 0;
};
inline ThreeWay three_way(const char* suite, const std::string& what, const Step (&s)[3],
                          const char* tested) {
  ct::report_bool(suite, what + ": loss bitwise",
                  s[2].loss == s[0].loss && s[2].tokens == s[0].tokens,
                  std::to_string(s[2].loss) + " vs " + std::to_string(s[0].loss));
  ThreeWay r;
  std::tie(r.ctl, r.ctl_bits) = grad_diff(s[1], s[0]);
  std::tie(r.test, r.test_bits) = grad_diff(s[2], s[0]);
  std::printf("  %s: control %.3e (%lld elements' bits differ), %s %.3e (%lld)\n", what.c_str(),
              r.ctl, (long long)r.ctl_bits, tested, r.test, (long long)r.test_bits);
  return r;
}

}  // namespace realwidth
