// Offloaded checkpoints (lora4j_engine_options.offload_checkpoints) compute the same function as
// checkpoints kept on the device: for recompute LAYER, SELECTIVE and ATTENTION, three engines on
// the same random 6-layer model and adapter -- without offload, a second one without offload (the
// control), and one with offload -- run the same sequence of calls: a padded batch, logits of
// another batch in between (a forward that keeps nothing), a larger padded batch (the pinned host
// buffer and the device slots grow), the first batch again (the host buffer reused at a smaller
// size), then a larger batch of full rows (on sm_90 the padded batches, right-padded with their
// padding's labels -100, take the same Hopper kernels as the full rows in the training calls;
// the logits call keeps the key mask). The losses must agree bit for bit (the forward is
// deterministic). The LoRA gradients must agree bit for bit wherever the control's do; where the
// control shows that two runs of one engine differ (the attention backward adds dQ with atomic
// additions in whatever order the blocks finish, and a last-bit difference can flip later bf16
// roundings; measured up to 6.0e-3 norm-wise), the offloaded gradients must be within 3x the
// largest difference the control showed over the four batches (one batch's difference is one draw:
// the H200 gave 1.0e-3 on one batch and 5.5e-3 on the next). A checkpoint read before its copy
// landed, or from another layer, is an error of order 1e-1 to 1. Then the offloading engine's
// device memory peak must be lower by about the checkpoints of the layers it sends to the host. Six
// layers: layers 0-3 make the round trip through the host, 4-5 stay on the device, so both slots
// see several reuses per step. Skips (exit 77) without a GPU; fails if the CUDA backend does not
// load.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "lora4j.h"
#include "lora_state.h"
#include "realwidth_model.h"
#include "step_diff.h"

namespace {

using namespace realwidth;

const char* kSuite = "offload";

lora4j_engine* create(const lora4j_model_config& c, int recompute, int offload) {
  return create_engine(c, LORA4J_DEVICE_CUDA, recompute, offload);
}

void compare(int recompute, const char* label) {
  // hidden 512, MLP 1024, 8 heads of 64, 2 KV heads, 6 layers, vocab 1024
  lora4j_model_config c = testutil::model_config(1024, 512, 1024, 6, 8, 2, 64, 1024, 1e4);
  // 0: checkpoints on the device, 1: the same (the control), 2: offloaded
  lora4j_engine* e[3] = {create(c, recompute, 0), create(c, recompute, 0), create(c, recompute, 1)};
  load_all(c, {e[0], e[1], e[2]}, 11);
  const Batch first = make_batch(5, 3, 384, c.vocab_size, Shape::PADDED);
  const Batch other = make_batch(6, 2, 256, c.vocab_size, Shape::PACKED);
  const Batch larger = make_batch(7, 4, 512, c.vocab_size, Shape::PADDED);
  const Batch full = make_batch(8, 4, 512, c.vocab_size, Shape::PLAIN);
  const Batch* order[] = {&first, &larger, &first, &full};
  const char* names[] = {"3 x 384 padded", "4 x 512 padded (grown)", "3 x 384 padded again",
                         "4 x 512 full rows"};
  int64_t peak[3] = {0, 0, 0};
  struct Diff {
    std::string what;
    double ctl, off;
    int64_t ctl_bits, off_bits;
  };
  std::vector<Diff> diffs;
  for (int i = 0; i < 4; ++i) {
    Step s[3];
    for (int k = 0; k < 3; ++k) {
      if (i == 1) {  // a forward that keeps nothing, between two training steps
        lora4j_batch v = other.view();
        std::vector<float> logits(size_t(other.B) * size_t(other.S) * size_t(c.vocab_size));
        RW_API(lora4j_logits(e[k], &v, logits.data(), int64_t(logits.size())));
      }
      s[k] = step(e[k], *order[i]);
    }
    const std::string what = std::string(label) + ", " + names[i];
    const ThreeWay d = three_way(kSuite, what, s, "offloaded");
    diffs.push_back({what, d.ctl, d.test, d.ctl_bits, d.test_bits});
  }
  // one run-to-run difference is one draw: the bound is 3x the largest the control showed
  double worst_ctl = 0;
  for (const Diff& d : diffs) worst_ctl = std::max(worst_ctl, d.ctl);
  for (const Diff& d : diffs) {
    if (d.ctl_bits == 0)
      ct::report_bool(kSuite, d.what + ": LoRA gradients bitwise", d.off_bits == 0,
                      std::to_string(d.off_bits) + " elements differ");
    else
      ct::report(kSuite, d.what + ": LoRA gradients (3x the control's largest)", d.off,
                 3 * worst_ctl);
  }
  for (int k = 0; k < 3; ++k) {
    int64_t in_use = 0;
    RW_API(lora4j_engine_memory(e[k], &in_use, &peak[k]));
  }
  // what the offloading engine leaves on the host at the largest batch: layers 0-3's bf16 input
  // (with SELECTIVE and ATTENTION their attention output, with ATTENTION their q, k and v); lse
  // and alignment are not counted
  const int64_t n = int64_t(larger.B) * larger.S;
  int64_t per_layer = n * c.hidden_size * 2;
  if (recompute != LORA4J_RECOMPUTE_LAYER) per_layer += n * c.num_heads * c.head_dim * 2;
  if (recompute == LORA4J_RECOMPUTE_ATTENTION)  // q, k, v
    per_layer += n * (c.num_heads + 2 * c.num_kv_heads) * c.head_dim * 2;
  const int64_t saved = peak[0] - peak[2], expect = (c.num_layers - 2) * per_layer;
  ct::report_bool(kSuite, std::string(label) + ": device peak lower by the offloaded layers",
                  saved >= expect && saved <= expect + expect / 4,
                  "peak " + std::to_string(peak[2]) + " vs " + std::to_string(peak[0]) +
                      " bytes, saved " + std::to_string(saved) +
                      ", expected >= " + std::to_string(expect));
  for (lora4j_engine* x : e) RW_API(lora4j_engine_destroy(x));
}

}  // namespace

int main() {
  ct::require_cuda_backend(kSuite);
  compare(LORA4J_RECOMPUTE_LAYER, "recompute layer");
  compare(LORA4J_RECOMPUTE_SELECTIVE, "recompute selective");
  compare(LORA4J_RECOMPUTE_ATTENTION, "recompute attention");
  std::printf("test_offload_cuda: %d failure(s)\n", ct::failures());
  return ct::failures() == 0 ? 0 : 1;
}
