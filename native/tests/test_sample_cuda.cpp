// Sampled decoding on the device (kernels/sample.cu, CudaEngine::decode_sample) against its host
// twin, model/sampler.cpp (the Java Sampler's definition):
//   sample_feed: over random logits (32,000 and a few tokens; spreads 0.2 to 4; ties at the top
//     and across a nucleus' edge; NaN, -inf, -0.0, +inf; nothing drawable), temperatures 1e-3 to
//     +inf, top-k 0 to 4000 and top-p 1e-9 to 1, each draw's token and the generator's state
//     after it equal to sample_token's from the same state, bit for bit;
//   decode_sample on the device (the default) against LORA4J_DECODE_SAMPLE_DEVICE=0 (Engine's
//     step-by-step draw on the host) on the decode model of test_decode_cuda: the same tokens and
//     states in one call of 30 (two queued runs), in chunks, with eos_id inside a run (the state
//     handed back is the one after the eos step, and the next call goes on from it), without and
//     with top-k.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/kernels/kernels.h"
#include "cuda_test_util.h"
#include "lora4j.h"
#include "model/sampler.h"
#include "realwidth_model.h"

namespace {

const char* kSuite = "sample";

void kernel_vs_host() {
  const int32_t Vmax = 32000;
  ct::Dev<float> logits(Vmax);
  ct::Dev<int64_t> state(1), state_out(1), w(Vmax);
  ct::Dev<uint32_t> key(Vmax);
  ct::Dev<int32_t> out(1), ids(1), pos(1);
  std::mt19937_64 g(17);
  std::normal_distribution<float> normal(0.f, 1.f);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  int cases = 0, bad = 0;
  std::string first_bad;
  for (int trial = 0; trial < 12; ++trial) {
    const int32_t v = trial < 3 ? 5 + trial : Vmax;
    std::vector<float> x(static_cast<size_t>(v));
    const float spread = trial % 3 == 0 ? 1.f : trial % 3 == 1 ? 4.f : 0.2f;
    for (float& f : x) f = normal(g) * spread;
    if (trial % 2 == 1 && v > 100) {
      for (int i = 0; i < 40; ++i) x[g() % size_t(v)] = 3.5f;
      for (int i = 0; i < 400; ++i) x[g() % size_t(v)] = 1.25f;
    }
    if (trial % 4 == 3) {
      x[g() % size_t(v)] = nan;
      x[g() % size_t(v)] = -inf;
      x[g() % size_t(v)] = -0.0f;
    }
    if (trial == 8) x[g() % size_t(v)] = inf, x[g() % size_t(v)] = inf;
    if (trial == 10) x.assign(x.size(), 0.5f);  // every token tied
    if (trial == 11) {                          // nothing drawable: the greedy token
      x.assign(x.size(), -inf);
      x[0] = nan;
    }
    CT_CUDA(cudaMemcpy(logits.p, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    for (int32_t k : {0, 1, 3, 50, 4000}) {
      for (double p : {1.0, 0.9, 0.5, 1e-9, 0.999999}) {
        for (double t : {0.7, 1.0, 1e-3, 50.0, double(inf)}) {
          lora4j::SampleParams sp;
          sp.temperature = t;
          sp.top_k = k;
          sp.top_p = p;
          int64_t host_state = trial * 1000 + 7;
          CT_CUDA(cudaMemcpy(state.p, &host_state, 8, cudaMemcpyHostToDevice));
          for (int draw = 0; draw < 4; ++draw) {
            const int32_t want = lora4j::sample_token(x.data(), v, sp, host_state);
            CT_CUDA(lora4j::cuda::sample_feed(logits.p, v, t, k, p, state.p, w.p, key.p, out.p,
                                              state_out.p, ids.p, pos.p, 123, nullptr));
            int32_t got = -1, got_id = -1, got_pos = -1;
            int64_t got_state = 0, got_state_out = 0;
            CT_CUDA(cudaMemcpy(&got, out.p, 4, cudaMemcpyDeviceToHost));
            CT_CUDA(cudaMemcpy(&got_id, ids.p, 4, cudaMemcpyDeviceToHost));
            CT_CUDA(cudaMemcpy(&got_pos, pos.p, 4, cudaMemcpyDeviceToHost));
            CT_CUDA(cudaMemcpy(&got_state, state.p, 8, cudaMemcpyDeviceToHost));
            CT_CUDA(cudaMemcpy(&got_state_out, state_out.p, 8, cudaMemcpyDeviceToHost));
            ++cases;
            if (got != want || got_id != want || got_pos != 123 || got_state != host_state ||
                got_state_out != host_state) {
              if (bad++ == 0)
                first_bad = "trial " + std::to_string(trial) + " k " + std::to_string(k) + " p " +
                            std::to_string(p) + " t " + std::to_string(t) + " draw " +
                            std::to_string(draw) + ": host " + std::to_string(want) + ", device " +
                            std::to_string(got);
            }
          }
        }
      }
    }
  }
  ct::report_bool(
      kSuite, "sample_feed: sample_token's tokens and states (" + std::to_string(cases) + " draws)",
      bad == 0, first_bad);
}

void engine_device_vs_host() {
  const lora4j_model_config c = testutil::model_config(1024, 1024, 2048, 4, 8, 2, 128, 1024, 1e4);
  setenv("LORA4J_DECODE_SAMPLE_DEVICE", "0", 1);
  lora4j_engine* host = realwidth::create_engine(c, LORA4J_DEVICE_CUDA, LORA4J_RECOMPUTE_NONE);
  unsetenv("LORA4J_DECODE_SAMPLE_DEVICE");
  lora4j_engine* dev = realwidth::create_engine(c, LORA4J_DEVICE_CUDA, LORA4J_RECOMPUTE_NONE);
  realwidth::load_all(c, {dev, host}, 95);
  std::mt19937 rng(96);
  std::uniform_int_distribution<int32_t> tok(3, c.vocab_size - 1);
  std::vector<int32_t> prompt(20);
  for (int32_t& t : prompt) t = tok(rng);
  std::vector<float> l(static_cast<size_t>(c.vocab_size));
  for (int32_t top_k : {0, 40}) {
    const double t = 1.0, p = top_k ? 1.0 : 0.9;
    const std::string how = top_k ? " (top-k 40)" : "";
    // the host engine, 30 steps in one call: the reference
    int64_t s_host = 5;
    std::vector<int32_t> want(30);
    int32_t n = 0;
    RW_API(lora4j_decode_start(host, prompt.data(), 20, l.data()));
    RW_API(lora4j_decode_sample(host, 9, 30, -1, t, top_k, p, &s_host, want.data(), &n));
    // the device engine: one call of 30, then chunks of 1, 2, 4, 8, 15
    int64_t s1 = 5, s2 = 5;
    std::vector<int32_t> one(30), parts;
    int32_t m = 0;
    RW_API(lora4j_decode_start(dev, prompt.data(), 20, l.data()));
    RW_API(lora4j_decode_sample(dev, 9, 30, -1, t, top_k, p, &s1, one.data(), &m));
    ct::report_bool(kSuite, "decode_sample on the device: the host's 30 tokens and state" + how,
                    n == 30 && m == 30 && one == want && s1 == s_host, "");
    RW_API(lora4j_decode_start(dev, prompt.data(), 20, l.data()));
    int32_t last = 9;
    for (int32_t k : {1, 2, 4, 8, 15}) {
      std::vector<int32_t> out(static_cast<size_t>(k));
      RW_API(lora4j_decode_sample(dev, last, k, -1, t, top_k, p, &s2, out.data(), &m));
      parts.insert(parts.end(), out.begin(), out.begin() + m);
      last = parts.back();
    }
    ct::report_bool(kSuite,
                    "decode_sample on the device in chunks: the same tokens and state" + how,
                    parts == want && s2 == s_host, "");
    // eos_id inside a run: produced up to it, the state after its draw, the next call goes on
    const int32_t eos = want[12];
    const int32_t at = int32_t(std::find(want.begin(), want.end(), eos) - want.begin()) + 1;
    int64_t s3 = 5, s4 = 5;
    std::vector<int32_t> a(20), b(5), ha(20), hb(5);
    int32_t na = 0, nb = 0, nha = 0, nhb = 0;
    RW_API(lora4j_decode_start(dev, prompt.data(), 20, l.data()));
    RW_API(lora4j_decode_sample(dev, 9, 20, eos, t, top_k, p, &s3, a.data(), &na));
    RW_API(lora4j_decode_sample(dev, a[size_t(na - 1)], 5, -1, t, top_k, p, &s3, b.data(), &nb));
    RW_API(lora4j_decode_start(host, prompt.data(), 20, l.data()));
    RW_API(lora4j_decode_sample(host, 9, 20, eos, t, top_k, p, &s4, ha.data(), &nha));
    RW_API(
        lora4j_decode_sample(host, ha[size_t(nha - 1)], 5, -1, t, top_k, p, &s4, hb.data(), &nhb));
    ct::report_bool(kSuite,
                    "decode_sample on the device: stops after eos_id with the host's state, the "
                    "next call goes on as the host's" +
                        how,
                    na == at && nha == at && a == ha && nb == 5 && b == hb && s3 == s4, "");
  }
  RW_API(lora4j_engine_destroy(dev));
  RW_API(lora4j_engine_destroy(host));
}

}  // namespace

int main() {
  ct::require_cuda_backend(kSuite);
  kernel_vs_host();
  engine_device_vs_host();
  std::printf("test_sample_cuda: %d failure(s)\n", ct::failures());
  return ct::failures() == 0 ? 0 : 1;
}
