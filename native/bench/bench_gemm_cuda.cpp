// The engine's frozen GEMMs at Mistral-7B shapes (4 x 2048 tokens) through cuBLASLt, each of the
// heuristic's first algorithms timed, on three kinds of operands: zeros, uniform values in
// (-0.05, 0.05), and the model's own distributions (weights normal with std 0.02 as transformers
// initialises them, the normed activations normal with std 1, gradients normal with std 1e-3).
// The H200's GEMM rate depends on the operands (the power the tensor cores draw), so this tells
// what the engine's GEMMs could reach on its data, and which algorithm the heuristic's first
// choice leaves behind. One JSON line per (GEMM, data, algorithm), then one summary line per
// (GEMM, data): the heuristic's first, the best, their ratio.
// --sustain SECONDS: afterwards, the GEMMs on the model's data back to back in a loop for
// that long, as a training step runs them (the heuristic's first algorithm, an event after each),
// one summary line per GEMM with its mean over the second half against its short-burst time: the
// rate the card holds under sustained load (its power and clocks), not only in a burst.
// --sustain-algos SECONDS: each GEMM's algorithms under that sustained load, one GEMM varied at a
// time, and the set that ran fastest against the heuristic's first choices (sustain_algos below).
//   bench_gemm_cuda [--algos N] [--data zeros,uniform,model] [--only NAME] [--sustain SECONDS]
//                   [--sustain-algos SECONDS]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "cuda/cublaslt.h"

namespace {

using lora4j::cuda::lt::Algo;
using lora4j::cuda::lt::Api;
using lora4j::cuda::lt::HeuristicResult;
namespace lt = lora4j::cuda::lt;

#define CU(x)                                                                         \
  do {                                                                                \
    cudaError_t e_ = (x);                                                             \
    if (e_ != cudaSuccess) {                                                          \
      std::printf("%s failed: %s (line %d)\n", #x, cudaGetErrorString(e_), __LINE__); \
      std::exit(2);                                                                   \
    }                                                                                 \
  } while (0)
#define LT(x)                                                                        \
  do {                                                                               \
    lt::Status s_ = (x);                                                             \
    if (s_ != lt::kStatusSuccess) {                                                  \
      std::printf("%s failed: cuBLAS status %d (line %d)\n", #x, int(s_), __LINE__); \
      std::exit(2);                                                                  \
    }                                                                                \
  } while (0)

// Row-major D[M, N] = op(A) op(B) (+ C = D when beta is 1), as the engine's Gemm::run: forward
// GEMMs take B^T (the weight [N, K]); input gradients take B as stored (the weight [K, N]).
struct Shape {
  const char* name;
  int64_t M, N, K;
  bool tb;      // B stored [N, K] (forward) or [K, N] (input gradient)
  bool d_f32;   // fp32 output (the residual stream, RoPE's input, the input gradients)
  float beta;   // 1: accumulates onto D (residual, or another projection's gradient)
  bool a_grad;  // A is a gradient (std 1e-3 in "model" data), else an activation (std 1)
};

constexpr int64_t kTokens = 8192;
const Shape kShapes[] = {
    {"self_attn.q_proj", kTokens, 4096, 4096, true, true, 0.f, false},
    {"self_attn.k_proj", kTokens, 1024, 4096, true, true, 0.f, false},
    {"self_attn.v_proj", kTokens, 1024, 4096, true, false, 0.f, false},
    {"self_attn.o_proj", kTokens, 4096, 4096, true, true, 1.f, false},
    {"mlp.gate_proj", kTokens, 14336, 4096, true, false, 0.f, false},
    {"mlp.gate_proj beta 1", kTokens, 14336, 4096, true, false, 1.f, false},
    {"mlp.down_proj", kTokens, 4096, 14336, true, true, 1.f, false},
    {"self_attn.q_proj dX", kTokens, 4096, 4096, false, true, 0.f, true},
    {"mlp.gate_proj dX", kTokens, 4096, 14336, false, true, 0.f, true},
    {"mlp.up_proj dX", kTokens, 4096, 14336, false, true, 1.f, true},
    {"mlp.down_proj dX", kTokens, 14336, 4096, false, true, 1.f, true},
    // gate's and up's input gradients as one product over [dgate | dup] and [W_gate; W_up]
    // (K = 2 x 14336), beside the two above (the second accumulating onto the first's fp32 dx)
    {"mlp.gate_proj+up_proj dX", kTokens, 4096, 28672, false, true, 0.f, true},
};

uint16_t bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7FFFu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

// n bf16 values of the given kind on the device.
void fill(__nv_bfloat16* d, size_t n, const std::string& kind, float std_dev, uint64_t seed) {
  std::vector<uint16_t> h(n, 0);
  std::mt19937_64 g(seed);
  if (kind == "uniform") {
    std::uniform_real_distribution<float> u(-0.05f, 0.05f);
    for (auto& x : h) x = bf16_bits(u(g));
  } else if (kind == "model") {
    std::normal_distribution<float> nd(0.f, std_dev);
    for (auto& x : h) x = bf16_bits(nd(g));
  }
  CU(cudaMemcpy(d, h.data(), n * 2, cudaMemcpyHostToDevice));
}

constexpr size_t kShapeCount = sizeof kShapes / sizeof kShapes[0];

// One GEMM's cuBLASLt problem as Gemm::run poses it (the column-major problem: m = N, n = M,
// first operand B, second A) and the heuristic's first `algos` algorithms for it.
struct Problem {
  lt::MatmulDesc desc = nullptr;
  lt::MatrixLayout la = nullptr, lb = nullptr, ld = nullptr;
  std::vector<HeuristicResult> res;
  int found = 0;
};

Problem make_problem(const Api& api, lt::Handle h, const Shape& s, int algos, size_t ws_bytes) {
  Problem pb;
  LT(api.cublasLtMatmulDescCreate(&pb.desc, lt::kCompute32F, CUDA_R_32F));
  const int opa = s.tb ? lt::kOpT : lt::kOpN, opb = lt::kOpN;
  LT(api.cublasLtMatmulDescSetAttribute(pb.desc, lt::kDescTransA, &opa, sizeof opa));
  LT(api.cublasLtMatmulDescSetAttribute(pb.desc, lt::kDescTransB, &opb, sizeof opb));
  const uint64_t a_rows = s.tb ? uint64_t(s.K) : uint64_t(s.N);
  const uint64_t a_cols = s.tb ? uint64_t(s.N) : uint64_t(s.K);
  LT(api.cublasLtMatrixLayoutCreate(&pb.la, CUDA_R_16BF, a_rows, a_cols, int64_t(a_rows)));
  LT(api.cublasLtMatrixLayoutCreate(&pb.lb, CUDA_R_16BF, uint64_t(s.K), uint64_t(s.M), s.K));
  LT(api.cublasLtMatrixLayoutCreate(&pb.ld, s.d_f32 ? CUDA_R_32F : CUDA_R_16BF, uint64_t(s.N),
                                    uint64_t(s.M), s.N));
  lt::Preference pref = nullptr;
  LT(api.cublasLtMatmulPreferenceCreate(&pref));
  LT(api.cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMaxWorkspaceBytes, &ws_bytes,
                                              sizeof ws_bytes));
  pb.res.resize(static_cast<size_t>(algos));
  LT(api.cublasLtMatmulAlgoGetHeuristic(h, pb.desc, pb.la, pb.lb, pb.ld, pb.ld, pref, algos,
                                        pb.res.data(), &pb.found));
  api.cublasLtMatmulPreferenceDestroy(pref);
  return pb;
}

void destroy_problem(const Api& api, Problem& pb) {
  api.cublasLtMatrixLayoutDestroy(pb.la);
  api.cublasLtMatrixLayoutDestroy(pb.lb);
  api.cublasLtMatrixLayoutDestroy(pb.ld);
  api.cublasLtMatmulDescDestroy(pb.desc);
}

// The largest A, B and D of the shapes, in elements: the buffers every GEMM shares.
struct Extents {
  int64_t a = 0, b = 0, d = 0;
};
Extents extents() {
  Extents x;
  for (const Shape& s : kShapes) {
    x.a = std::max(x.a, s.M * s.K);
    x.b = std::max(x.b, s.N * s.K);
    x.d = std::max(x.d, s.M * s.N);
  }
  return x;
}

// The GEMMs back to back, GEMM i with its heuristic's algorithm choice[i], over and over
// for `seconds`, an event after each: the mean of each GEMM and of the whole loop over the second
// half of the run (the card's power and clocks settle in the first).
struct LoopTimes {
  std::vector<double> gemm_ms;
  double loop_ms = 0, first_half_loop_ms = 0;
  int iterations = 0;
  double seconds = 0;
};
LoopTimes run_loop(const Api& api, lt::Handle h, cudaStream_t st, void* ws, size_t ws_bytes,
                   const std::vector<Problem>& pbs, const std::vector<int>& choice,
                   __nv_bfloat16* A, __nv_bfloat16* G, __nv_bfloat16* B, void* D, double seconds) {
  std::vector<cudaEvent_t> ev(kShapeCount + 1);
  for (auto& e : ev) CU(cudaEventCreate(&e));
  std::vector<std::vector<float>> series(kShapeCount);
  const float alpha = 1.f;
  const auto t0 = std::chrono::steady_clock::now();
  LoopTimes t;
  while (t.seconds < seconds) {
    CU(cudaEventRecord(ev[0], st));
    for (size_t i = 0; i < kShapeCount; ++i) {
      const Shape& s = kShapes[i];
      LT(api.cublasLtMatmul(h, pbs[i].desc, &alpha, B, pbs[i].la, s.a_grad ? G : A, pbs[i].lb,
                            &s.beta, D, pbs[i].ld, D, pbs[i].ld,
                            &pbs[i].res[size_t(choice[i])].algo, ws, ws_bytes, st));
      CU(cudaEventRecord(ev[i + 1], st));
    }
    CU(cudaEventSynchronize(ev[kShapeCount]));
    for (size_t i = 0; i < kShapeCount; ++i) {
      float ms = 0;
      CU(cudaEventElapsedTime(&ms, ev[i], ev[i + 1]));
      series[i].push_back(ms);
    }
    ++t.iterations;
    t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const size_t n = series[0].size(), half = n / 2;
  t.gemm_ms.assign(kShapeCount, 0.0);
  for (size_t i = 0; i < kShapeCount; ++i) {
    double first = 0, second = 0;
    for (size_t k = 0; k < n; ++k) (k < half ? first : second) += series[i][k];
    t.gemm_ms[i] = second / double(std::max<size_t>(1, n - half));
    t.loop_ms += t.gemm_ms[i];
    t.first_half_loop_ms += first / double(std::max<size_t>(1, half));
  }
  for (auto& e : ev) cudaEventDestroy(e);
  return t;
}

// The model's data (activations std 1, gradients std 1e-3, weights std 0.02) in A, G, B.
void fill_model(__nv_bfloat16* A, __nv_bfloat16* G, __nv_bfloat16* B) {
  const Extents most = extents();
  fill(A, size_t(most.a), "model", 1.f, 21);
  fill(G, size_t(most.a), "model", 1e-3f, 22);
  fill(B, size_t(most.b), "model", 0.02f, 23);
}

// --sustain: the GEMMs on the model's data with the heuristic's first algorithm, back to
// back for `seconds`; each one's sustained mean beside its short-burst time (burst_ms, 0 when not
// measured).
void sustain(const Api& api, lt::Handle h, cudaStream_t st, void* ws, size_t ws_bytes,
             __nv_bfloat16* A, __nv_bfloat16* B, void* D, double seconds, const double* burst_ms) {
  __nv_bfloat16* G = nullptr;  // the gradient operand (A holds the activations)
  CU(cudaMalloc(&G, size_t(extents().a) * 2));
  fill_model(A, G, B);
  std::vector<Problem> pbs;
  for (const Shape& s : kShapes) pbs.push_back(make_problem(api, h, s, 1, ws_bytes));
  const LoopTimes t = run_loop(api, h, st, ws, ws_bytes, pbs, std::vector<int>(kShapeCount, 0), A,
                               G, B, D, seconds);
  for (size_t i = 0; i < kShapeCount; ++i) {
    std::printf(
        "{\"bench\":\"gemm_sustained\",\"gemm\":\"%s\",\"iterations\":%d,\"seconds\":%.1f,"
        "\"second_half_ms\":%.4f,\"burst_ms\":%.4f}\n",
        kShapes[i].name, t.iterations, t.seconds, t.gemm_ms[i], burst_ms[i]);
    std::printf("# sustained %-22s %.4f ms, burst %.4f ms, sustained / burst %.3f\n",
                kShapes[i].name, t.gemm_ms[i], burst_ms[i],
                burst_ms[i] > 0 ? t.gemm_ms[i] / burst_ms[i] : 0.0);
  }
  for (Problem& pb : pbs) destroy_problem(api, pb);
  cudaFree(G);
}

// --sustain-algos SECONDS: which algorithm each GEMM should run under the card's power cap, where
// the fastest in a burst need not be the one that costs the least energy. For each GEMM i and
// each of its heuristic's first `algos` algorithms a, the sustained loop with GEMM i on a and the
// others on their first, for `seconds`; the loop's time (the others' included: an algorithm
// that draws more power slows them) against the loop with i on its first, run just before it.
// Then the "chosen" set (each GEMM's algorithm whose loop was fastest, when it gained at least
// 0.3%) against all-first, alternated for three rounds of twice `seconds` each.
void sustain_algos(const Api& api, lt::Handle h, cudaStream_t st, void* ws, size_t ws_bytes,
                   __nv_bfloat16* A, __nv_bfloat16* B, void* D, double seconds, int algos) {
  __nv_bfloat16* G = nullptr;
  CU(cudaMalloc(&G, size_t(extents().a) * 2));
  fill_model(A, G, B);
  std::vector<Problem> pbs;
  for (const Shape& s : kShapes) pbs.push_back(make_problem(api, h, s, algos, ws_bytes));
  const std::vector<int> first(kShapeCount, 0);
  std::vector<int> chosen(kShapeCount, 0);
  run_loop(api, h, st, ws, ws_bytes, pbs, first, A, G, B, D, seconds);  // warm the card
  for (size_t i = 0; i < kShapeCount; ++i) {
    double best = 1.0;
    const Shape& s = kShapes[i];
    const float alpha = 1.f;
    for (int a = 1; a < pbs[i].found; ++a) {
      if (api.cublasLtMatmul(h, pbs[i].desc, &alpha, B, pbs[i].la, s.a_grad ? G : A, pbs[i].lb,
                             &s.beta, D, pbs[i].ld, D, pbs[i].ld, &pbs[i].res[size_t(a)].algo, ws,
                             ws_bytes, st) != lt::kStatusSuccess)
        continue;  // not runnable with this workspace
      std::vector<int> c = first;
      const LoopTimes base = run_loop(api, h, st, ws, ws_bytes, pbs, c, A, G, B, D, seconds);
      c[i] = a;
      const LoopTimes t = run_loop(api, h, st, ws, ws_bytes, pbs, c, A, G, B, D, seconds);
      const double ratio = t.loop_ms / base.loop_ms;
      std::printf(
          "{\"bench\":\"gemm_sustained_algo\",\"gemm\":\"%s\",\"algo\":%d,\"loop_ms\":%.4f,"
          "\"first_loop_ms\":%.4f,\"gemm_ms\":%.4f,\"first_gemm_ms\":%.4f,\"loop_ratio\":%.4f}\n",
          kShapes[i].name, a, t.loop_ms, base.loop_ms, t.gemm_ms[i], base.gemm_ms[i], ratio);
      std::printf(
          "# %-22s algo %d: loop %.4f ms against %.4f on the first (%.4f), gemm %.4f / %.4f\n",
          kShapes[i].name, a, t.loop_ms, base.loop_ms, ratio, t.gemm_ms[i], base.gemm_ms[i]);
      if (ratio < best && ratio < 0.997) best = ratio, chosen[i] = a;
    }
  }
  std::printf("# chosen:");
  for (size_t i = 0; i < kShapeCount; ++i) std::printf(" %s=%d", kShapes[i].name, chosen[i]);
  std::printf("\n");
  for (int round = 1; round <= 3; ++round) {
    const LoopTimes f = run_loop(api, h, st, ws, ws_bytes, pbs, first, A, G, B, D, 2 * seconds);
    const LoopTimes c = run_loop(api, h, st, ws, ws_bytes, pbs, chosen, A, G, B, D, 2 * seconds);
    std::printf(
        "{\"bench\":\"gemm_sustained_chosen\",\"round\":%d,\"first_loop_ms\":%.4f,"
        "\"chosen_loop_ms\":%.4f,\"ratio\":%.4f}\n",
        round, f.loop_ms, c.loop_ms, c.loop_ms / f.loop_ms);
    std::printf("# round %d: all first %.4f ms a loop, chosen %.4f (%.4f)\n", round, f.loop_ms,
                c.loop_ms, c.loop_ms / f.loop_ms);
  }
  for (Problem& pb : pbs) destroy_problem(api, pb);
  cudaFree(G);
}

}  // namespace

int main(int argc, char** argv) {
  int algos = 8;
  std::vector<std::string> kinds = {"zeros", "uniform", "model"};
  std::string only;
  double sustain_s = 0, sustain_algos_s = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--algos") == 0 && i + 1 < argc) {
      algos = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
      kinds.clear();
      std::string s = argv[++i];
      for (size_t p = 0; p <= s.size();) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        if (q > p) kinds.push_back(s.substr(p, q - p));
        p = q + 1;
      }
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else if (std::strcmp(argv[i], "--sustain") == 0 && i + 1 < argc) {
      sustain_s = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--sustain-algos") == 0 && i + 1 < argc) {
      sustain_algos_s = std::atof(argv[++i]);
    } else {
      std::printf(
          "usage: bench_gemm_cuda [--algos N] [--data zeros,uniform,model] [--only NAME] "
          "[--sustain SECONDS] [--sustain-algos SECONDS]\n");
      return 2;
    }
  }
  for (const std::string& k : kinds)
    if (k != "zeros" && k != "uniform" && k != "model") {
      std::printf("unknown --data kind '%s' (zeros, uniform, model)\n", k.c_str());
      return 2;
    }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const Api* loaded = nullptr;
  try {
    loaded = &lt::api();
  } catch (const std::exception& e) {
    std::printf("bench_gemm_cuda: %s\n", e.what());
    return 2;
  }
  const Api& api = *loaded;
  lt::Handle h = nullptr;
  LT(api.cublasLtCreate(&h));
  cudaStream_t st;
  CU(cudaStreamCreate(&st));
  size_t ws_bytes = size_t(64) << 20;
  void* ws = nullptr;
  CU(cudaMalloc(&ws, ws_bytes));
  const Extents most = extents();
  __nv_bfloat16 *A = nullptr, *B = nullptr;
  void* D = nullptr;
  CU(cudaMalloc(&A, size_t(most.a) * 2));
  CU(cudaMalloc(&B, size_t(most.b) * 2));
  CU(cudaMalloc(&D, size_t(most.d) * 4));
  CU(cudaMemset(D, 0, size_t(most.d) * 4));
  double burst_ms[kShapeCount] = {};
  cudaEvent_t e0, e1;
  CU(cudaEventCreate(&e0));
  CU(cudaEventCreate(&e1));
  const float alpha = 1.f;
  for (const std::string& kind : kinds) {
    for (const Shape& s : kShapes) {
      if (!only.empty() && only != s.name) continue;
      fill(A, size_t(s.M * s.K), kind, s.a_grad ? 1e-3f : 1.f, 11);
      fill(B, size_t(s.N * s.K), kind, 0.02f, 12);
      Problem pb = make_problem(api, h, s, algos, ws_bytes);
      double first = 0, best = 1e30;
      int best_i = -1;
      for (int i = 0; i < pb.found; ++i) {
        auto run = [&] {
          return api.cublasLtMatmul(h, pb.desc, &alpha, B, pb.la, A, pb.lb, &s.beta, D, pb.ld, D,
                                    pb.ld, &pb.res[size_t(i)].algo, ws, ws_bytes, st);
        };
        if (run() != lt::kStatusSuccess) continue;
        run();
        CU(cudaStreamSynchronize(st));
        float ms_best = 1e30f;
        for (int rep = 0; rep < 3; ++rep) {
          CU(cudaEventRecord(e0, st));
          for (int k = 0; k < 10; ++k) run();
          CU(cudaEventRecord(e1, st));
          CU(cudaEventSynchronize(e1));
          float ms = 0;
          CU(cudaEventElapsedTime(&ms, e0, e1));
          ms_best = std::min(ms_best, ms / 10);
        }
        const double tflops = 2.0 * double(s.M) * double(s.N) * double(s.K) / ms_best / 1e9;
        std::printf(
            "{\"bench\":\"gemm\",\"gemm\":\"%s\",\"data\":\"%s\",\"algo\":%d,\"ms\":%.4f,"
            "\"tflops\":%.1f}\n",
            s.name, kind.c_str(), i, ms_best, tflops);
        if (i == 0) first = ms_best;
        if (ms_best < best) best = ms_best, best_i = i;
        if (i == 0 && kind == "model") burst_ms[size_t(&s - kShapes)] = ms_best;
      }
      std::printf(
          "# %-22s %-8s heuristic's first %.4f ms, best %.4f ms (algorithm %d of %d), "
          "first / best %.3f\n",
          s.name, kind.c_str(), first, best, best_i, pb.found, best > 0 ? first / best : 0.0);
      destroy_problem(api, pb);
    }
  }
  if (sustain_s > 0) sustain(api, h, st, ws, ws_bytes, A, B, D, sustain_s, burst_ms);
  if (sustain_algos_s > 0) sustain_algos(api, h, st, ws, ws_bytes, A, B, D, sustain_algos_s, algos);
  cudaFree(A);
  cudaFree(B);
  cudaFree(D);
  cudaFree(ws);
  api.cublasLtDestroy(h);
  return 0;
}
