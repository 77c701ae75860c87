// The training step as CUDA graphs (LORA4J_CUDA_GRAPHS, graph_cache.h) computes what the eager
// launches compute. Per case, three engines on the same random 6-layer model (head_dim 128, GQA)
// and adapter: eager (LORA4J_CUDA_GRAPHS=0), a second eager one (the control), and one with
// LORA4J_CUDA_GRAPHS=require (graphs, as by default, but a capture that fails is an error). They
// run the same calls: a padded batch three times (its key's first step eager, the second captured,
// the third the graph), logits of another batch in between (a forward that keeps nothing), the
// adapter's values replaced in place (the graph reads them where the optimizer writes them), a
// larger batch twice (the activations grow: every graph is dropped), the first batch twice
// (captured again), a batch of full rows at the larger shape (the larger batch's graph, other
// tokens) and a packed batch twice (segments: another key). The losses must agree bit for bit (the
// forward is deterministic). The LoRA gradients are printed with how many elements' bits differ
// and must agree within kRunToRun or 3x the control's largest difference, whichever is larger: the
// attention backward adds dQ with atomic additions in the order its blocks finish, and a last-bit
// difference can flip later bf16 roundings, so two runs of one engine now and then differ by up to
// ~6e-3 norm-wise (test_offload_cuda; this test's first GPU run saw 5.4e-3 on an eager step of the
// graph engine while the two eager engines agreed), where a graph that reads a stale checkpoint,
// another layer's buffer or the last batch's values is off by 1e-1 to 1. The graph engine's counts
// (LORA4J_CUDA_GRAPHS_STATS) must be exactly the captures, launches and eager phases the sequence
// implies, so a fallback to eager launches cannot pass for a graph. Cases: no recompute; per-layer
// recompute; selective and attention recompute with offloaded checkpoints (copies to and from
// pinned memory on a second stream inside the graphs); attention recompute offloaded on NF4
// projections (the dequantization scratch is host state the graphs must leave as they found it).
// Then a shape that changes every step (rows right-padded to each batch's longest): twenty sequence
// lengths, each stepped twice, capture the first sixteen, evicting as the cache fills, and capture
// nothing more once sixteen graphs have been evicted. An unknown LORA4J_CUDA_GRAPHS value is
// refused at the engine's creation. Skips (exit 77) without a GPU.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "lora4j.h"
#include "lora_state.h"
#include "nf4_test_util.h"
#include "realwidth_model.h"
#include "safetensors_reader.h"
#include "step_diff.h"

namespace {

using namespace realwidth;

const char* kSuite = "graphs";
constexpr double kRunToRun = 1e-2;

// Every LoRA parameter of every engine set to new values (a sign flip and a scale of the old ones
// for B, A rotated by one element): values change, the layout does not.
void replace_adapter_values(const std::vector<lora4j_engine*>& engines) {
  for (auto& [name, v] : testutil::lora_state(engines[0], LORA4J_STATE_PARAM)) {
    std::vector<float> w(v.size());
    const bool is_b = name.find("lora_B") != std::string::npos;
    for (size_t k = 0; k < v.size(); ++k) w[k] = is_b ? -1.5f * v[k] : v[(k + 1) % v.size()];
    for (lora4j_engine* e : engines)
      RW_API(lora4j_lora_set(e, LORA4J_STATE_PARAM, name.c_str(), LORA4J_DTYPE_F32, w.data(),
                             int64_t(w.size())));
  }
}

// The projections as NF4 (random codes and scales, blocksize 64), the same on every engine.
void projections_nf4(const lora4j_model_config& c, const std::vector<lora4j_engine*>& engines) {
  uint64_t seed = 101;
  for (const nf4test::Weight& w : nf4test::weights(c)) {
    if (w.name.find("_proj.") == std::string::npos) continue;
    const nf4test::Nf4Data d = nf4test::random_nf4(w.numel, 64, false, seed++, 0.02f);
    const lora4j_nf4_weight v = d.view();
    for (lora4j_engine* e : engines) RW_API(lora4j_engine_set_weight_nf4(e, w.name.c_str(), &v));
  }
}

// A fresh path for an engine's graph counts (tag names the case).
std::string stats_path(const char* tag) {
  const std::string p =
      std::string("/tmp/lora4j-test-graphs-") + tag + "-" + std::to_string(getpid()) + ".json";
  std::remove(p.c_str());
  return p;
}

// An engine made with LORA4J_CUDA_GRAPHS=mode ("0": eager; "require": graphs, a capture that fails
// an error) and, when stats is given, LORA4J_CUDA_GRAPHS_STATS=stats.
lora4j_engine* engine_with(const char* mode, const lora4j_model_config& c, int recompute,
                           int offload = 0, const std::string& stats = "") {
  setenv("LORA4J_CUDA_GRAPHS", mode, 1);
  if (!stats.empty()) setenv("LORA4J_CUDA_GRAPHS_STATS", stats.c_str(), 1);
  lora4j_engine* e = create_engine(c, LORA4J_DEVICE_CUDA, recompute, offload);
  unsetenv("LORA4J_CUDA_GRAPHS");
  unsetenv("LORA4J_CUDA_GRAPHS_STATS");
  return e;
}

// Destroys e, which appends its graph counts to stats, and reports `what`: those counts are
// exactly want's. The file is removed.
void destroy_and_check_counts(lora4j_engine* e, const std::string& stats, const std::string& what,
                              std::initializer_list<std::pair<const char*, long long>> want) {
  RW_API(lora4j_engine_destroy(e));
  std::ifstream in(stats);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  std::remove(stats.c_str());
  bool ok = !last.empty();
  std::string detail = ok ? last + "; want" : "no stats line; want";
  const testutil::Json j = ok ? testutil::Json::parse(last) : testutil::Json{};
  for (const auto& [name, value] : want) {
    ok = ok && j.has(name) && j[name].num == double(value);
    detail += std::string(" ") + name + " " + std::to_string(value);
  }
  ct::report_bool(kSuite, what, ok, detail);
}

void compare(const char* label, int recompute, int offload, bool nf4) {
  // hidden 1024, MLP 2048, 8 heads of 128, 2 KV heads, 6 layers, vocab 1024
  lora4j_model_config c = testutil::model_config(1024, 1024, 2048, 6, 8, 2, 128, 1024, 1e4);
  const std::string stats = stats_path("compare");
  lora4j_engine* e[3] = {engine_with("0", c, recompute, offload),
                         engine_with("0", c, recompute, offload),
                         engine_with("require", c, recompute, offload, stats)};
  const std::vector<lora4j_engine*> all{e[0], e[1], e[2]};
  if (nf4) {  // the other weights in bf16, the projections in NF4, then the adapter
    const std::vector<WeightDef> defs = weight_defs(c);
    for (size_t t = 0; t < defs.size(); ++t) {
      if (defs[t].name.find("_proj.") != std::string::npos) continue;
      const std::vector<uint16_t> w = random_bf16(11, uint32_t(t), defs[t].numel, defs[t].std);
      for (lora4j_engine* x : all)
        RW_API(lora4j_engine_set_weight(x, defs[t].name.c_str(), LORA4J_DTYPE_BF16, w.data(),
                                        defs[t].numel));
    }
    projections_nf4(c, all);
    random_adapter(all, 12);
  } else {
    load_all(c, all, 11);
  }
  const Batch first = make_batch(5, 3, 384, c.vocab_size, Shape::PADDED);
  const Batch other = make_batch(6, 2, 256, c.vocab_size, Shape::PACKED);
  const Batch larger = make_batch(7, 4, 512, c.vocab_size, Shape::PADDED);
  const Batch full = make_batch(8, 4, 512, c.vocab_size, Shape::PLAIN);
  const Batch packed = make_batch(9, 3, 384, c.vocab_size, Shape::PACKED);
  struct Call {
    const Batch* b;
    const char* what;
  };
  const Call calls[] = {{&first, "3 x 384 padded, eager"},
                        {&first, "3 x 384 padded, captured"},
                        {&first, "3 x 384 padded, graph"},
                        {&first, "3 x 384 padded, graph after logits"},
                        {&first, "3 x 384 padded, graph after new adapter values"},
                        {&larger, "4 x 512 padded (grown: graphs dropped), eager"},
                        {&larger, "4 x 512 padded, captured"},
                        {&first, "3 x 384 padded, captured again"},
                        {&first, "3 x 384 padded, graph again"},
                        {&full, "4 x 512 full rows, the larger batch's graph"},
                        {&packed, "3 x 384 packed, eager"},
                        {&packed, "3 x 384 packed, captured"}};
  // Per phase (forward, backward) of each call above: captures 2 + 2 + 2 + 2, launches 2 x 9,
  // eager 2 x 3; the growth drops the first batch's two graphs.
  const long long want_captures = 8, want_launches = 18, want_eager = 6, want_dropped = 2;
  struct Diff {
    std::string what;
    double ctl, graph;
  };
  std::vector<Diff> diffs;
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; ++i) {
    if (i == 3)  // a forward that keeps nothing, between two training steps
      for (lora4j_engine* x : all) {
        lora4j_batch v = other.view();
        std::vector<float> logits(size_t(other.B) * size_t(other.S) * size_t(c.vocab_size));
        RW_API(lora4j_logits(x, &v, logits.data(), int64_t(logits.size())));
      }
    if (i == 4) replace_adapter_values(all);
    Step s[3];
    for (int k = 0; k < 3; ++k) s[k] = step(e[k], *calls[i].b);
    const std::string what = std::string(label) + ", " + calls[i].what;
    const ThreeWay d = three_way(kSuite, what, s, "graphs");
    diffs.push_back({what, d.ctl, d.test});
  }
  double worst_ctl = 0;
  for (const Diff& d : diffs) worst_ctl = std::max(worst_ctl, d.ctl);
  for (const Diff& d : diffs)
    ct::report(kSuite, d.what + ": LoRA gradients", d.graph, std::max(kRunToRun, 3 * worst_ctl));
  RW_API(lora4j_engine_destroy(e[0]));
  RW_API(lora4j_engine_destroy(e[1]));
  destroy_and_check_counts(
      e[2], stats, std::string(label) + ": graphs captured, launched, dropped as the calls imply",
      {{"captures", want_captures},
       {"launches", want_launches},
       {"eager", want_eager},
       {"dropped", want_dropped}});
}

// Twenty sequence lengths (1 x 16 ... 1 x 168), each stepped twice on a small model whose
// activations were first sized by a 1 x 256 step (eager): the first sixteen keys are captured at
// their second step (32 graphs, forward and backward, through a cache of 16: 16 evicted), the last
// four run eagerly both times; every loss equal to an eager engine's.
void shapes_that_do_not_repeat() {
  lora4j_model_config c = testutil::model_config(64, 64, 128, 2, 4, 2, 16, 256, 1e4);
  const std::string stats = stats_path("shapes");
  lora4j_engine* eager = engine_with("0", c, LORA4J_RECOMPUTE_NONE);
  lora4j_engine* graphs = engine_with("require", c, LORA4J_RECOMPUTE_NONE, 0, stats);
  load_all(c, {eager, graphs}, 21);
  {  // the activations sized once for the longest rows (growing them drops every graph)
    const Batch longest = make_batch(29, 1, 256, c.vocab_size, Shape::PLAIN);
    step(eager, longest);
    step(graphs, longest);
  }
  int unequal = 0;
  std::string first_unequal;
  for (int k = 0; k < 20; ++k) {
    const int S = 16 + 8 * k;
    const Batch b = make_batch(uint64_t(30 + k), 1, S, c.vocab_size, Shape::PLAIN);
    for (int twice = 0; twice < 2; ++twice) {
      const Step a = step(eager, b), g = step(graphs, b);
      if (a.loss != g.loss && unequal++ == 0)
        first_unequal = "1 x " + std::to_string(S) + ": " + std::to_string(g.loss) + " vs " +
                        std::to_string(a.loss);
    }
  }
  ct::report_bool(
      kSuite, "20 shapes stepped twice: losses bitwise", unequal == 0,
      unequal ? std::to_string(unequal) + " differ, first " + first_unequal : "40 steps");
  RW_API(lora4j_engine_destroy(eager));
  destroy_and_check_counts(graphs, stats, "20 shapes stepped twice: 16 keys captured, then none",
                           {{"captures", 32}, {"launches", 32}, {"evicted", 16}, {"eager", 50}});
}

void refuses_unknown_mode() {
  lora4j_model_config c = testutil::model_config(64, 64, 128, 2, 4, 2, 16, 64, 1e4);
  lora4j_engine_options o{};
  o.device = LORA4J_DEVICE_CUDA;
  setenv("LORA4J_CUDA_GRAPHS", "yes", 1);
  lora4j_engine* e = nullptr;
  const int st = lora4j_engine_create(&c, &o, &e);
  unsetenv("LORA4J_CUDA_GRAPHS");
  const std::string msg = st == LORA4J_OK ? "" : lora4j_last_error();
  ct::report_bool(kSuite, "LORA4J_CUDA_GRAPHS=yes refused at the engine's creation",
                  st == LORA4J_EINVAL && msg.find("LORA4J_CUDA_GRAPHS") != std::string::npos,
                  "status " + std::to_string(st) + ": " + msg);
  if (e) lora4j_engine_destroy(e);
}

}  // namespace

int main() {
  ct::require_cuda_backend(kSuite);
  refuses_unknown_mode();
  compare("no recompute", LORA4J_RECOMPUTE_NONE, 0, false);
  compare("recompute layer", LORA4J_RECOMPUTE_LAYER, 0, false);
  compare("recompute selective, offloaded", LORA4J_RECOMPUTE_SELECTIVE, 1, false);
  compare("recompute attention, offloaded", LORA4J_RECOMPUTE_ATTENTION, 1, false);
  compare("recompute attention, offloaded, NF4", LORA4J_RECOMPUTE_ATTENTION, 1, true);
  shapes_that_do_not_repeat();
  std::printf("test_graphs_cuda: %d failure(s)\n", ct::failures());
  return ct::failures() == 0 ? 0 : 1;
}
