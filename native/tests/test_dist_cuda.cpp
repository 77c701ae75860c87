// The CUDA engine's collectives on two GPUs of one host, one rank per device, each rank a thread
// of this process driving its own engine through the C API (as two JVMs would): a small random
// Mistral (4 layers, LoRA r 16 on all seven projections), the same weights and adapter on both
// ranks, different batches per rank.
//
// (a) The gradient all-reduce overlapped with the backward (lora4j_dist_reduce_in_backward),
//     after one and after two accumulated micro-batches (only the last one armed), with buckets
//     of one layer, of two layers and of the default 25 MiB (one bucket for this small model):
//     bitwise equal to the plain lora4j_dist_allreduce_grad, and equal to the sum of the two
//     ranks' gradients computed alone (fp32, relative 1e-6; with two ranks each element's sum is
//     one fp32 addition of the same two values whatever NCCL's algorithm or the bucketing, so the
//     bits agree as well, which is printed). The backward itself must be deterministic for this
//     comparison: rows of 48 tokens (one key tile of the attention backward, whose dQ sums with
//     atomics over key tiles), checked first by running it twice.
// (b) Both recompute modes (none, layer).
// (c) all-gather (each rank's own gradients, bitwise), all-reduce of doubles (exact sums), an
//     all-gather right after an armed backward (it sees the reduced sums) and the all-reduce that
//     follows it (waits only: not summed twice).
// (d) A lost peer: rank 1 stops taking part while rank 0 all-reduces, plain and armed, with
//     LORA4J_DIST_TIMEOUT_S=5: rank 0 gets an error within 10 s, then its engine still evaluates
//     (same loss as before) and trains alone.
//
// Needs 2 devices and libnccl.so.2. With fewer devices it exits 77 (skipped) unless
// LORA4J_REQUIRE_GPUS is 2 or more (scripts/gpu/run.sh passes REQUIRE_GPUS), then it fails;
// without any device LORA4J_REQUIRE_GPU=1 fails it as every CUDA test.
//
// `test_dist_cuda bench` (not run by ctest; scripts/gpu/run.sh STEPS=dist) times a step's
// forward_backward + gradient all-reduce at Mistral-7B shapes (32 layers unless
// LORA4J_BENCH_LAYERS, 4 x 2048 tokens per rank unless LORA4J_BENCH_BATCH / _SEQ, LoRA r 16 on
// all projections: 41,943,040 fp32 gradients), without and with the overlap, both recompute
// modes, and prints one JSON line per mode.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cuda_test_util.h"
#include "lora4j.h"
#include "realwidth_model.h"
#include "model_config.h"

namespace {

using namespace realwidth;
const char* kSuite = "dist";
constexpr int kWorld = 2;

#define API(call)                                                                \
  do {                                                                           \
    int s_ = (call);                                                             \
    if (s_ != LORA4J_OK) {                                                       \
      std::printf("%s failed (%d): %s  FAIL\n", #call, s_, lora4j_last_error()); \
      std::fflush(stdout);                                                       \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs f(rank) for both ranks at once, rank 1 on a second thread (collectives need both).
void on_both(const std::function<void(int)>& f) {
  std::thread t([&] { f(1); });
  f(0);
  t.join();
}

// A host barrier for the two rank threads (the benchmark starts each timed step together).
class Barrier {
 public:
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    const int gen = gen_;
    if (++count_ == kWorld) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return gen_ != gen; });
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int count_ = 0, gen_ = 0;
};

lora4j_model_config small_config() {
  return testutil::model_config(512, 128, 320, 4, 4, 2, 32, 256);
}

lora4j_engine* create(const lora4j_model_config& c, int device, int recompute) {
  lora4j_engine_options o{};
  o.device = LORA4J_DEVICE_CUDA;
  o.device_index = device;
  o.recompute = recompute;
  lora4j_engine* e = nullptr;
  API(lora4j_engine_create(&c, &o, &e));
  return e;
}

int64_t flat_numel(lora4j_engine* e) {
  int64_t n = 0;
  API(lora4j_grad_flat_numel(e, &n));
  return n;
}
std::vector<float> flat(lora4j_engine* e) {
  std::vector<float> g(size_t(flat_numel(e)));
  API(lora4j_grad_get_flat(e, g.data(), int64_t(g.size())));
  return g;
}
double fb(lora4j_engine* e, const Batch& b, float scale) {
  lora4j_batch v = b.view();
  double loss = 0;
  int64_t tokens = 0;
  API(lora4j_forward_backward(e, &v, scale, &loss, &tokens));
  return loss;
}
double eval(lora4j_engine* e, const Batch& b) {
  lora4j_batch v = b.view();
  double loss = 0;
  int64_t tokens = 0;
  API(lora4j_eval_loss(e, &v, &loss, &tokens));
  return loss;
}
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
size_t differing(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) ++n;
  return n + (a.size() > b.size() ? a.size() - b.size() : b.size() - a.size());
}
std::vector<float> add(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> s(a.size());
  for (size_t i = 0; i < a.size(); ++i) s[i] = a[i] + b[i];
  return s;
}
double norm(const std::vector<float>& a) {
  double s = 0;
  for (float x : a) s += double(x) * double(x);
  return std::sqrt(s);
}
void check_bits(const std::string& name, const std::vector<float>& got,
                const std::vector<float>& want) {
  size_t d = differing(got, want);
  ct::report_bool(kSuite, name, d == 0, "differing=" + std::to_string(d));
}
// fp32 tolerance against the alone sums; whether the bits agree too is printed
void check_close(const std::string& name, const std::vector<float>& got,
                 const std::vector<float>& want) {
  double err = ct::rel_err(got, want);
  std::printf("[%s] %s: %s\n", kSuite, name.c_str(),
              same_bits(got, want) ? "bitwise equal" : "not bitwise equal");
  ct::report(kSuite, name, err, 1e-6);
}

std::vector<uint8_t> new_id() {
  std::vector<uint8_t> id(LORA4J_DIST_ID_BYTES);
  API(lora4j_dist_unique_id(id.data(), int32_t(id.size())));
  return id;
}
void join(lora4j_engine* const* e) {
  std::vector<uint8_t> id = new_id();
  on_both([&](int r) { API(lora4j_dist_init(e[r], id.data(), int32_t(id.size()), kWorld, r)); });
}

// Batches: rank r's micro-batch m (different tokens everywhere).
Batch batch_of(int rank, int micro, const lora4j_model_config& c) {
  return make_batch(uint64_t(100 + 10 * rank + micro), 2, 48, c.vocab_size, Shape::PLAIN);
}

// The per-layer size of the adapter's gradients, in MiB, for bucket settings.
double layer_mib(const lora4j_model_config& c, lora4j_engine* e) {
  return double(flat_numel(e)) / c.num_layers * sizeof(float) / (1024.0 * 1024.0);
}

// One group: fresh engines (the bucket setting is read when a group is joined), the gradients
// each rank computes alone first, then the group's.
void equivalence(int recompute, const char* bucket_mb, const char* label) {
  const lora4j_model_config c = small_config();
  lora4j_engine* e[kWorld] = {create(c, 0, recompute), create(c, 1, recompute)};
  load_all(c, {e[0], e[1]}, 7);
  const std::string tag =
      std::string(recompute == LORA4J_RECOMPUTE_NONE ? "recompute=none" : "recompute=layer") +
      " buckets=" + label;
  const float scale = 1.f / 500.f;
  Batch b[kWorld][2] = {{batch_of(0, 0, c), batch_of(0, 1, c)},
                        {batch_of(1, 0, c), batch_of(1, 1, c)}};
  // alone: one micro-batch, again (the backward must be deterministic), two micro-batches
  std::vector<float> one[kWorld], two[kWorld];
  double loss1[kWorld];
  for (int r = 0; r < kWorld; ++r) {
    API(lora4j_zero_grad(e[r]));
    loss1[r] = fb(e[r], b[r][0], scale);
    one[r] = flat(e[r]);
    API(lora4j_zero_grad(e[r]));
    // a group of one ignores the arming, and its all-reduce changes nothing
    API(lora4j_dist_reduce_in_backward(e[r], 1));
    fb(e[r], b[r][0], scale);
    API(lora4j_dist_allreduce_grad(e[r]));
    std::vector<float> again = flat(e[r]);
    check_bits(tag + " rank " + std::to_string(r) + " backward deterministic, arming alone ignored",
               again, one[r]);
    fb(e[r], b[r][1], scale);
    two[r] = flat(e[r]);
  }
  const std::vector<float> sum1 = add(one[0], one[1]), sum2 = add(two[0], two[1]);
  ct::report_bool(kSuite, tag + " gradients not trivial",
                  norm(sum1) > 0 && differing(two[0], one[0]) > 0 && differing(one[0], one[1]) > 0,
                  "norm=" + std::to_string(norm(sum1)));

  setenv("LORA4J_DIST_BUCKET_MB", bucket_mb, 1);
  join(e);
  unsetenv("LORA4J_DIST_BUCKET_MB");

  // plain, one micro-batch
  std::vector<float> plain1[kWorld], plain2[kWorld], over1[kWorld], over2[kWorld], mid2[kWorld];
  double sums[kWorld][2];
  on_both([&](int r) {
    API(lora4j_zero_grad(e[r]));
    fb(e[r], b[r][0], scale);
    API(lora4j_dist_allreduce_grad(e[r]));
    plain1[r] = flat(e[r]);
    // overlapped, one micro-batch, the loss sum all-reduced in between (as the trainer does)
    API(lora4j_zero_grad(e[r]));
    API(lora4j_dist_reduce_in_backward(e[r], 1));
    double v[2] = {fb(e[r], b[r][0], scale), double(r + 1)};
    API(lora4j_dist_allreduce_f64(e[r], v, 2));
    sums[r][0] = v[0];
    sums[r][1] = v[1];
    API(lora4j_dist_allreduce_grad(e[r]));
    over1[r] = flat(e[r]);
    // plain, two micro-batches
    API(lora4j_zero_grad(e[r]));
    fb(e[r], b[r][0], scale);
    fb(e[r], b[r][1], scale);
    API(lora4j_dist_allreduce_grad(e[r]));
    plain2[r] = flat(e[r]);
    // overlapped, two micro-batches: only the last armed
    API(lora4j_zero_grad(e[r]));
    fb(e[r], b[r][0], scale);
    API(lora4j_dist_reduce_in_backward(e[r], 1));
    fb(e[r], b[r][1], scale);
    mid2[r] = flat(e[r]);  // reduced during the backward already
    API(lora4j_dist_allreduce_grad(e[r]));
    over2[r] = flat(e[r]);
  });
  for (int r = 0; r < kWorld; ++r) {
    const std::string rk = tag + " rank " + std::to_string(r);
    check_close(rk + " plain all-reduce, 1 micro-batch = alone sum", plain1[r], sum1);
    check_bits(rk + " overlapped = plain, 1 micro-batch", over1[r], plain1[r]);
    check_close(rk + " overlapped, 1 micro-batch = alone sum", over1[r], sum1);
    check_close(rk + " plain all-reduce, 2 micro-batches = alone sum", plain2[r], sum2);
    check_bits(rk + " overlapped = plain, 2 micro-batches", over2[r], plain2[r]);
    check_close(rk + " overlapped, 2 micro-batches = alone sum", over2[r], sum2);
    check_bits(rk + " summed before the all-reduce call, not summed twice", mid2[r], over2[r]);
    ct::report_bool(kSuite, rk + " loss sum all-reduced after an armed backward",
                    sums[r][0] == loss1[0] + loss1[1] && sums[r][1] == 3.0,
                    "got " + std::to_string(sums[r][0]) + ", " + std::to_string(sums[r][1]));
  }
  check_bits(tag + " ranks hold the same reduced gradients", over2[0], over2[1]);
  for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
}

// (c): all-gather, all-reduce of doubles, an all-gather after an armed backward.
void gathers() {
  const lora4j_model_config c = small_config();
  lora4j_engine* e[kWorld] = {create(c, 0, LORA4J_RECOMPUTE_NONE),
                              create(c, 1, LORA4J_RECOMPUTE_NONE)};
  load_all(c, {e[0], e[1]}, 9);
  const float scale = 1.f / 300.f;
  std::vector<float> own[kWorld];
  for (int r = 0; r < kWorld; ++r) {
    API(lora4j_zero_grad(e[r]));
    fb(e[r], batch_of(r, 0, c), scale);
    own[r] = flat(e[r]);
  }
  setenv("LORA4J_DIST_BUCKET_MB", "0", 1);
  join(e);
  unsetenv("LORA4J_DIST_BUCKET_MB");
  const size_t n = own[0].size();
  std::vector<float> gathered[kWorld], after_armed[kWorld], reduced[kWorld];
  double f64[kWorld][3];
  on_both([&](int r) {
    gathered[r].resize(kWorld * n);
    API(lora4j_dist_allgather_grad(e[r], gathered[r].data(), int64_t(n)));
    double v[3] = {1.5 + r, -2.25 * r, 1e300};
    API(lora4j_dist_allreduce_f64(e[r], v, 3));
    std::copy(v, v + 3, f64[r]);
    // armed, then an all-gather: it waits for the reductions and sees the sums
    API(lora4j_zero_grad(e[r]));
    API(lora4j_dist_reduce_in_backward(e[r], 1));
    fb(e[r], batch_of(r, 0, c), scale);
    after_armed[r].resize(kWorld * n);
    API(lora4j_dist_allgather_grad(e[r], after_armed[r].data(), int64_t(n)));
    API(lora4j_dist_allreduce_grad(e[r]));  // waits only
    reduced[r] = flat(e[r]);
  });
  const std::vector<float> sum = add(own[0], own[1]);
  for (int r = 0; r < kWorld; ++r) {
    const std::string rk = "rank " + std::to_string(r);
    for (int q = 0; q < kWorld; ++q)
      check_bits(rk + " all-gather row " + std::to_string(q) + " = rank's own gradients",
                 std::vector<float>(gathered[r].begin() + q * n, gathered[r].begin() + (q + 1) * n),
                 own[q]);
    ct::report_bool(kSuite, rk + " all-reduce of doubles",
                    f64[r][0] == 4.0 && f64[r][1] == -2.25 && f64[r][2] == 2e300,
                    std::to_string(f64[r][0]) + " " + std::to_string(f64[r][1]) + " " +
                        std::to_string(f64[r][2]));
    for (int q = 0; q < kWorld; ++q)
      check_bits(
          rk + " all-gather after an armed backward: row " + std::to_string(q) + " = sum",
          std::vector<float>(after_armed[r].begin() + q * n, after_armed[r].begin() + (q + 1) * n),
          sum);
    check_bits(rk + " all-reduce after it waits only (not summed twice)", reduced[r], sum);
  }
  for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
}

// (d): rank 1 stops taking part, as a rank whose process died; armed: the bucket reductions
// queued by the backward are what rank 0 waits for. Rank 1's engine stands for the dead process:
// it is never used again nor destroyed (destroying it would close a communicator whose peer has
// gone; the process's exit releases it).
void lost_peer(bool armed) {
  const lora4j_model_config c = small_config();
  lora4j_engine* e[kWorld] = {create(c, 0, LORA4J_RECOMPUTE_NONE),
                              create(c, 1, LORA4J_RECOMPUTE_NONE)};
  load_all(c, {e[0], e[1]}, 11);
  const std::string tag = armed ? "lost peer, armed backward:" : "lost peer, plain all-reduce:";
  const Batch b0 = batch_of(0, 0, c);
  const double before = eval(e[0], b0);
  setenv("LORA4J_DIST_BUCKET_MB", "0", 1);
  join(e);
  unsetenv("LORA4J_DIST_BUCKET_MB");
  setenv("LORA4J_DIST_TIMEOUT_S", "5", 1);
  API(lora4j_zero_grad(e[0]));
  if (armed) API(lora4j_dist_reduce_in_backward(e[0], 1));
  fb(e[0], b0, 1.f / 100.f);
  const Clock::time_point t0 = Clock::now();
  const int status = lora4j_dist_allreduce_grad(e[0]);
  const double secs = since(t0);
  const std::string msg = lora4j_last_error();
  unsetenv("LORA4J_DIST_TIMEOUT_S");
  std::printf("[%s] %s rank 0: status %d after %.1f s: %s\n", kSuite, tag.c_str(), status, secs,
              msg.c_str());
  ct::report_bool(kSuite, tag + " rank 0 gets an error within 10 s",
                  status == LORA4J_EDEVICE && secs < 10.0 &&
                      msg.find("the all-reduce of the gradients") != std::string::npos,
                  "status=" + std::to_string(status) + " " + std::to_string(secs) + " s");
  // the engine keeps working, alone: the same evaluation, a training pass, and a group-of-one
  // all-reduce that changes nothing
  const double after = eval(e[0], b0);
  ct::report_bool(kSuite, tag + " rank 0 evaluates as before", after == before,
                  std::to_string(before) + " -> " + std::to_string(after));
  API(lora4j_zero_grad(e[0]));
  fb(e[0], b0, 1.f / 100.f);
  std::vector<float> g = flat(e[0]);
  API(lora4j_dist_allreduce_grad(e[0]));
  check_bits(tag + " rank 0 trains alone afterwards", flat(e[0]), g);
  API(lora4j_engine_destroy(e[0]));
}

// ---- the benchmark --------------------------------------------------------------------------
int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

// Mistral-7B-shaped random weights: each distinct tensor shape is made once (threads) and
// uploaded to every layer, which is all a timing needs.
void load_bench(const lora4j_model_config& c, lora4j_engine* e,
                std::map<std::pair<int64_t, float>, std::vector<uint16_t>>& cache,
                std::mutex& cache_mutex) {
  for (const WeightDef& w : weight_defs(c)) {
    const std::vector<uint16_t>* data = nullptr;
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto key = std::make_pair(w.numel, w.std);
      auto it = cache.find(key);
      if (it == cache.end()) {
        std::vector<uint16_t> v(size_t(w.numel));
        const unsigned nt = std::max(1u, std::thread::hardware_concurrency());
        std::vector<std::thread> th;
        const float a = w.std * std::sqrt(3.f);
        for (unsigned t = 0; t < nt; ++t)
          th.emplace_back([&, t] {
            for (size_t i = t; i < v.size(); i += nt) {
              float u = lora4j::bench_uniform(5, uint32_t(w.numel % 1000), i);
              v[i] = bf16_bits(w.std > 0 ? a * u : 1.f + 0.1f * u);
            }
          });
        for (auto& t : th) t.join();
        it = cache.emplace(key, std::move(v)).first;
      }
      data = &it->second;
    }
    API(lora4j_engine_set_weight(e, w.name.c_str(), LORA4J_DTYPE_BF16, data->data(), w.numel));
  }
  random_adapter({e}, 6);  // r 16, alpha 32 (scale 2)
}

int bench() {
  const int layers = env_int("LORA4J_BENCH_LAYERS", 32), B = env_int("LORA4J_BENCH_BATCH", 4),
            S = env_int("LORA4J_BENCH_SEQ", 2048), iters = env_int("LORA4J_BENCH_ITERS", 5);
  const lora4j_model_config c = mistral7b_v03(layers);
  const char* transport = std::getenv("NCCL_P2P_DISABLE") ? "socket/no-p2p" : "default";
  std::map<std::pair<int64_t, float>, std::vector<uint16_t>> cache;
  std::mutex cache_mutex;
  for (int recompute : {LORA4J_RECOMPUTE_NONE, LORA4J_RECOMPUTE_LAYER}) {
    lora4j_engine* e[kWorld] = {nullptr, nullptr};
    on_both([&](int r) {
      e[r] = create(c, r, recompute);
      load_bench(c, e[r], cache, cache_mutex);
    });
    join(e);
    const int64_t numel = flat_numel(e[0]);
    Barrier barrier;
    // per mode: rank 0's step times (ms); the modes alternate each iteration
    const char* modes[3] = {"forward_backward alone", "then all-reduce", "all-reduce overlapped"};
    std::vector<double> ms[3];
    on_both([&](int r) {
      Batch b = make_batch(uint64_t(300 + r), B, S, c.vocab_size, Shape::PLAIN);
      const float scale = 1.f / float(B * S);
      for (int it = 0; it <= iters; ++it)
        for (int m = 0; m < 3; ++m) {
          API(lora4j_zero_grad(e[r]));
          barrier.wait();
          Clock::time_point t0 = Clock::now();
          if (m == 2) API(lora4j_dist_reduce_in_backward(e[r], 1));
          fb(e[r], b, scale);
          if (m > 0) API(lora4j_dist_allreduce_grad(e[r]));
          const double t = since(t0) * 1e3;
          if (r == 0 && it > 0) ms[m].push_back(t);  // iteration 0 warms up
        }
    });
    double med[3];
    for (int m = 0; m < 3; ++m) {
      std::sort(ms[m].begin(), ms[m].end());
      med[m] = ms[m][ms[m].size() / 2];
    }
    std::printf(
        "{\"bench\":\"dist_overlap\",\"transport\":\"%s\",\"layers\":%d,\"batch\":%d,\"seq\":%d,"
        "\"recompute\":\"%s\",\"grad_numel\":%lld,\"ms_forward_backward\":%.2f,"
        "\"ms_then_allreduce\":%.2f,\"ms_overlapped\":%.2f,\"exposed_allreduce_ms\":%.2f,"
        "\"exposed_overlapped_ms\":%.2f,\"saving_ms\":%.2f,\"iters\":%d}\n",
        transport, layers, B, S, recompute == LORA4J_RECOMPUTE_NONE ? "none" : "layer",
        static_cast<long long>(numel), med[0], med[1], med[2], med[1] - med[0], med[2] - med[0],
        med[1] - med[2], iters);
    std::printf("# %s, %s: %s %.2f ms, %s %.2f ms, %s %.2f ms (medians of %d on rank 0)\n",
                transport, recompute == LORA4J_RECOMPUTE_NONE ? "no recompute" : "recompute=layer",
                modes[0], med[0], modes[1], med[1], modes[2], med[2], iters);
    std::fflush(stdout);
    for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ct::skip_without_gpu();
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
  if (n < kWorld) {
    const int need = env_int("LORA4J_REQUIRE_GPUS", 0);
    if (need >= kWorld) {
      std::printf("FAIL: LORA4J_REQUIRE_GPUS=%d but %d CUDA device(s) found\n", need, n);
      return 1;
    }
    std::printf("SKIP: %d CUDA device(s); the collectives need %d\n", n, kWorld);
    return 77;
  }
  int32_t avail = 0;
  char why[512] = {0};
  API(lora4j_cuda_available(&avail, why, sizeof why));
  if (!avail) {
    std::printf("FAIL: the CUDA backend did not load: %s\n", why);
    return 1;
  }
  if (argc > 1 && std::string(argv[1]) == "bench") return bench();

  const Clock::time_point t0 = Clock::now();
  // buckets: one per layer; two layers (1.5 layers' size, rounded up to whole layers); 25 MiB
  {
    lora4j_engine* probe = create(small_config(), 0, LORA4J_RECOMPUTE_NONE);
    API(lora4j_lora_attach(probe, 16, 2.f, 127u));
    char two_layers[32];
    std::snprintf(two_layers, sizeof two_layers, "%.6f", 1.5 * layer_mib(small_config(), probe));
    API(lora4j_engine_destroy(probe));
    equivalence(LORA4J_RECOMPUTE_NONE, "0", "1-layer");
    equivalence(LORA4J_RECOMPUTE_NONE, two_layers, "2-layer");
    equivalence(LORA4J_RECOMPUTE_NONE, "25", "25MiB(one)");
    equivalence(LORA4J_RECOMPUTE_LAYER, "0", "1-layer");
    equivalence(LORA4J_RECOMPUTE_LAYER, two_layers, "2-layer");
  }
  gathers();
  lost_peer(false);
  lost_peer(true);
  std::printf("[%s] %d failure(s) in %.1f s\n", kSuite, ct::failures(), since(t0));
  return ct::failures() ? 1 : 0;
}
