// The engine's frozen GEMMs at Mistral-7B shapes (4 x 2048 tokens) through cuBLASLt, each of the
// heuristic's first algorithms timed, on three kinds of operands: zeros, uniform values in
// (-0.05, 0.05), and the model's own distributions (weights normal with std 0.02 as transformers
// initialises them, the normed activations normal with std 1, gradients normal with std 1e-3).
// The H200's GEMM rate depends on the operands (the power the tensor cores draw), so this tells
// what the engine's GEMMs could reach on its data, and which algorithm the heuristic's first
// choice leaves behind. One JSON line per (GEMM, data, algorithm), then one summary line per
// (GEMM, data): the heuristic's first, the best, their ratio.
// --sustain SECONDS: afterwards, the eleven GEMMs on the model's data back to back in a loop for
// that long, as a training step runs them (the heuristic's first algorithm, an event after each),
// one summary line per GEMM with its mean over the second half against its short-burst time: the
// rate the card holds under sustained load (its power and clocks), not only in a burst.
//   bench_gemm_cuda [--algos N] [--data zeros,uniform,model] [--only NAME] [--sustain SECONDS]
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

// The largest A, B and D of the eleven shapes, in elements: the buffers every GEMM shares.
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

// The eleven GEMMs back to back, over and over for `seconds`, on the model's data (activations
// std 1, gradients std 1e-3, weights std 0.02), an event after each; the mean of each over the
// second half of the run beside its short-burst time (burst_ms, 0 when not measured).
void sustain(const Api& api, lt::Handle h, cudaStream_t st, void* ws, size_t ws_bytes,
             __nv_bfloat16* A, __nv_bfloat16* B, void* D, double seconds, const double* burst_ms) {
  const Extents most = extents();
  __nv_bfloat16* G = nullptr;  // the gradient operand (A holds the activations)
  CU(cudaMalloc(&G, size_t(most.a) * 2));
  fill(A, size_t(most.a), "model", 1.f, 21);
  fill(G, size_t(most.a), "model", 1e-3f, 22);
  fill(B, size_t(most.b), "model", 0.02f, 23);
  std::vector<Problem> pbs;
  for (const Shape& s : kShapes) pbs.push_back(make_problem(api, h, s, 1, ws_bytes));
  std::vector<cudaEvent_t> ev(kShapeCount + 1);
  for (auto& e : ev) CU(cudaEventCreate(&e));
  std::vector<std::vector<float>> series(kShapeCount);
  const float alpha = 1.f;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  int iters = 0;
  while (elapsed < seconds) {
    CU(cudaEventRecord(ev[0], st));
    for (size_t i = 0; i < kShapeCount; ++i) {
      const Shape& s = kShapes[i];
      LT(api.cublasLtMatmul(h, pbs[i].desc, &alpha, B, pbs[i].la, s.a_grad ? G : A, pbs[i].lb,
                            &s.beta, D, pbs[i].ld, D, pbs[i].ld, &pbs[i].res[0].algo, ws, ws_bytes,
                            st));
      CU(cudaEventRecord(ev[i + 1], st));
    }
    CU(cudaEventSynchronize(ev[kShapeCount]));
    for (size_t i = 0; i < kShapeCount; ++i) {
      float ms = 0;
      CU(cudaEventElapsedTime(&ms, ev[i], ev[i + 1]));
      series[i].push_back(ms);
    }
    ++iters;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  for (size_t i = 0; i < kShapeCount; ++i) {
    const std::vector<float>& v = series[i];
    double first_half = 0, second_half = 0;
    const size_t half = v.size() / 2;
    for (size_t k = 0; k < v.size(); ++k) (k < half ? first_half : second_half) += v[k];
    first_half /= double(std::max<size_t>(1, half));
    second_half /= double(std::max<size_t>(1, v.size() - half));
    std::printf(
        "{\"bench\":\"gemm_sustained\",\"gemm\":\"%s\",\"iterations\":%d,\"seconds\":%.1f,"
        "\"first_half_ms\":%.4f,\"second_half_ms\":%.4f,\"burst_ms\":%.4f}\n",
        kShapes[i].name, iters, elapsed, first_half, second_half, burst_ms[i]);
    std::printf(
        "# sustained %-22s %.4f ms (first half %.4f), burst %.4f ms, sustained / burst %.3f\n",
        kShapes[i].name, second_half, first_half, burst_ms[i],
        burst_ms[i] > 0 ? second_half / burst_ms[i] : 0.0);
  }
  for (auto& e : ev) cudaEventDestroy(e);
  for (Problem& pb : pbs) destroy_problem(api, pb);
  cudaFree(G);
}

}  // namespace

int main(int argc, char** argv) {
  int algos = 8;
  std::vector<std::string> kinds = {"zeros", "uniform", "model"};
  std::string only;
  double sustain_s = 0;
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
    } else {
      std::printf(
          "usage: bench_gemm_cuda [--algos N] [--data zeros,uniform,model] [--only NAME] "
          "[--sustain SECONDS]\n");
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
  cudaFree(A);
  cudaFree(B);
  cudaFree(D);
  cudaFree(ws);
  api.cublasLtDestroy(h);
  return 0;
}
