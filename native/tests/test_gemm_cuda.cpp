// The GEMM wrapper (cuda/gemm.h) against an fp64 CPU product of the same bf16 operands, in every
// form the engine uses (plain, A^T, B^T; bf16 and fp32 outputs; alpha, beta 0 and 1, a separate
// C), at the engine's LoRA shapes and a small frozen-projection shape; and a second Gemm on the
// same device gives bitwise the same outputs (the engine's runs repeat exactly). Also the LM
// head's chunk sizes (lm_head.h): the fewest chunks whose logits fit the budget, split evenly. On
// sm_89 and later, run_e4m3 (the q/k residue GEMMs) against the fp64 product of the decoded e4m3
// operands times their device scales and alpha, accumulating (beta 1): with both scales on the
// device, and with A's left null and folded into alpha, as the engine calls it.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/gemm.h"
#include "cuda/lm_head.h"
#include "cuda_test_util.h"

using bf = __nv_bfloat16;
using ct::Dev;
using lora4j::cuda::Gemm;

namespace {

struct Case {
  const char* what;
  bool ta, tb;
  int64_t M, N, K;
  bool d_f32;
  float alpha, beta;
  bool separate_c;  // C given apart from D (the engine's residual add)
};

// D = alpha op(A) op(B) + beta C, row-major, in fp64 from the bf16 operands.
std::vector<float> reference(const Case& c, const std::vector<float>& a,
                             const std::vector<float>& b, const std::vector<float>& c0) {
  std::vector<float> d(size_t(c.M * c.N));
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        double x = c.ta ? a[size_t(k * c.M + i)] : a[size_t(i * c.K + k)];
        double y = c.tb ? b[size_t(j * c.K + k)] : b[size_t(k * c.N + j)];
        s += x * y;
      }
      d[size_t(i * c.N + j)] = float(c.alpha * s + c.beta * double(c0[size_t(i * c.N + j)]));
    }
  return d;
}

// The output half of run(): D (and a separate C) of type T, poisoned where the GEMM must write
// every element; returns D as floats.
template <class T>
std::vector<float> run_out(Gemm& gemm, const Case& c, const bf* a, int64_t lda, const bf* b,
                           int64_t ldb, const std::vector<float>& c0) {
  constexpr bool f32 = std::is_same<T, float>::value;
  const size_t nd = size_t(c.M * c.N);
  Dev<T> dd(nd), dc(nd);
  auto upload = [&](Dev<T>& d) {
    if constexpr (f32)
      ct::up(d, c0);
    else
      ct::up_bf16(d, c0);
  };
  if (c.beta != 0.f) upload(c.separate_c ? dc : dd);
  if (c.separate_c || c.beta == 0.f) dd.poison();
  gemm.run(c.ta, c.tb, c.M, c.N, c.K, a, lda, b, ldb, dd.p, f32, c.N, c.alpha, c.beta, c.what,
           c.separate_c ? dc.p : nullptr);
  CT_CUDA(cudaDeviceSynchronize());
  if constexpr (f32)
    return ct::down(dd);
  else
    return ct::down_bf16(dd);
}

// Runs case c on gemm with fresh device buffers holding a, b and (for beta != 0) c0; returns D.
std::vector<float> run(Gemm& gemm, const Case& c, const std::vector<float>& a,
                       const std::vector<float>& b, const std::vector<float>& c0) {
  Dev<bf> da(a.size()), db(b.size());
  ct::up_bf16(da, a);
  ct::up_bf16(db, b);
  const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
  return c.d_f32 ? run_out<float>(gemm, c, da.p, lda, db.p, ldb, c0)
                 : run_out<bf>(gemm, c, da.p, lda, db.p, ldb, c0);
}

}  // namespace

int main() {
  ct::skip_without_gpu();
  cudaStream_t stream;
  CT_CUDA(cudaStreamCreate(&stream));
  constexpr size_t kWs = 32u << 20;
  Dev<char> ws1(kWs), ws2(kWs);
  Gemm g1, g2;
  try {
    g1.init(stream, ws1.p, kWs);
    g2.init(stream, ws2.p, kWs);
  } catch (const std::exception& e) {
    ct::skip(std::string("no cuBLASLt: ") + e.what());
  }

  // n = 1000 tokens, in = 1024, out = 768, rank 16: the engine's LoRA GEMMs and a frozen one
  const int64_t n = 1000, in = 1024, out = 768, r = 16;
  const std::vector<Case> cases = {
      {"lora_A forward", false, true, n, r, in, false, 1.f, 0.f, false},
      {"lora_B forward (fp32, residual)", false, true, n, out, r, true, 0.5f, 1.f, true},
      {"lora_B forward (bf16)", false, true, n, out, r, false, 0.5f, 0.f, false},
      {"dLoRA_B", true, false, out, r, n, true, 0.5f, 1.f, false},
      {"dy B", false, false, n, r, out, false, 1.f, 0.f, false},
      {"dLoRA_A", true, false, r, in, n, true, 0.5f, 1.f, false},
      {"dX through LoRA", false, false, n, in, r, true, 0.5f, 0.f, false},
      {"frozen forward, accumulating", false, true, n, out, in, true, 1.f, 1.f, false},
      {"frozen dX, accumulating", false, false, n, in, out, true, 1.f, 1.f, false},
  };
  ct::Rng rng(20261130);
  for (const Case& c : cases) {
    std::vector<float> a(size_t(c.M * c.K)), b(size_t(c.K * c.N)), c0(size_t(c.M * c.N));
    for (auto& x : a) x = ct::round_bf16(rng.normal());
    for (auto& x : b) x = ct::round_bf16(rng.normal(0.05f));
    for (auto& x : c0) x = c.d_f32 ? rng.normal() : ct::round_bf16(rng.normal());
    const auto ref = reference(c, a, b, c0);
    const auto got1 = run(g1, c, a, b, c0);
    ct::report("gemm", std::string(c.what) + " vs fp64", ct::rel_err(got1, ref),
               c.d_f32 ? 1e-5 : 1e-2);
    const auto got2 = run(g2, c, a, b, c0);
    bool same = got1.size() == got2.size() &&
                std::memcmp(got1.data(), got2.data(), got1.size() * sizeof(float)) == 0;
    ct::report_bool("gemm", std::string(c.what) + ": second Gemm bitwise", same,
                    same ? "identical" : "differs");
  }

  // e4m3 x e4m3 -> fp32, accumulating: D = alpha sa sb A B^T + D (A [n, in], B [out, in])
  int dev = 0, major = 0, minor = 0;
  CT_CUDA(cudaGetDevice(&dev));
  CT_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CT_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  if (major * 10 + minor >= 89) {
    std::vector<uint8_t> a8(size_t(n * in)), b8(size_t(out * in));
    auto enc = [&](float v) {
      return uint8_t(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
    };
    auto dec = [](uint8_t b) {
      __nv_fp8_e4m3 v;
      v.__x = b;
      return double(float(v));
    };
    for (auto& x : a8) x = enc(rng.normal(4.f));
    for (auto& x : b8) x = enc(rng.normal(100.f));
    std::vector<float> c0(size_t(n * out));
    for (auto& x : c0) x = rng.normal();
    const float alpha = 0.5f, sa = 0.25f, sb = 0x1p-10f;
    std::vector<float> ref(c0.size());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < out; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < in; ++k)
          acc += dec(a8[size_t(i * in + k)]) * dec(b8[size_t(j * in + k)]);
        ref[size_t(i * out + j)] = float(double(alpha) * sa * sb * acc + c0[size_t(i * out + j)]);
      }
    Dev<uint8_t> da(a8.size()), db(b8.size());
    Dev<float> dd(c0.size()), dsc(8);  // the scales 16 bytes apart (cuBLASLt needs that)
    CT_CUDA(cudaMemcpy(da.p, a8.data(), a8.size(), cudaMemcpyHostToDevice));
    CT_CUDA(cudaMemcpy(db.p, b8.data(), b8.size(), cudaMemcpyHostToDevice));
    ct::up(dd, c0);
    const float scales[8] = {sa, 0.f, 0.f, 0.f, sb};
    CT_CUDA(cudaMemcpy(dsc.p, scales, sizeof scales, cudaMemcpyHostToDevice));
    g1.run_e4m3(n, out, in, da.p, in, dsc.p, db.p, in, dsc.p + 4, dd.p, out, alpha, 1.f,
                "e4m3 residue GEMM");
    CT_CUDA(cudaDeviceSynchronize());
    Dev<float> dd2(c0.size());
    ct::up(dd2, c0);
    g1.run_e4m3(n, out, in, da.p, in, nullptr, db.p, in, dsc.p + 4, dd2.p, out, alpha * sa, 1.f,
                "e4m3 residue GEMM");
    CT_CUDA(cudaDeviceSynchronize());
    ct::report("gemm", "e4m3 x e4m3 -> fp32, A's scale null and in alpha, vs fp64",
               ct::rel_err(ct::down(dd2), ref), 1e-3);
    // 1e-3: Hopper's FP8 tensor cores add their products with fewer bits than fp32 between
    // cuBLASLt's promotions; a wrong scale, layout or operand order is off by O(1)
    ct::report("gemm", "e4m3 x e4m3 -> fp32 with device scales, accumulating, vs fp64",
               ct::rel_err(ct::down(dd), ref), 1e-3);
    // a scale pointer 4 bytes in: refused by name before cuBLASLt would answer status 15
    std::string msg;
    try {
      g1.run_e4m3(n, out, in, da.p, in, nullptr, db.p, in, dsc.p + 1, dd2.p, out, alpha, 1.f,
                  "e4m3 residue GEMM");
    } catch (const lora4j::Error& e) {
      msg = e.what();
    }
    ct::report_bool("gemm", "e4m3 GEMM refuses a scale pointer not 16-byte aligned, by name",
                    msg.find("e4m3 residue GEMM") != std::string::npos &&
                        msg.find("16-byte") != std::string::npos,
                    msg);
  } else {
    std::printf("[gemm] e4m3 GEMM: sm_%d%d has no FP8 tensor cores, not run\n", major, minor);
  }

  // fp16 x fp16 -> fp32, accumulating, row strides past K (the engine's q / k GEMM on the fp16
  // copy of the normed input, whose rows carry the LoRA columns): D = alpha A B^T + beta D
  {
    const int64_t K = in + 48, lda = K + 8, ldb = K + 16, ldd = out + 4;
    std::vector<__half> ah(size_t(n * lda)), bh(size_t(out * ldb));
    std::vector<double> ad(ah.size()), bd(bh.size());
    for (size_t i = 0; i < ah.size(); ++i) {
      ah[i] = __float2half_rn(rng.normal(8.f));
      ad[i] = double(__half2float(ah[i]));
    }
    for (size_t i = 0; i < bh.size(); ++i) {
      bh[i] = __float2half_rn(rng.normal(0.02f));
      bd[i] = double(__half2float(bh[i]));
    }
    std::vector<float> c0(size_t(n * ldd));
    for (auto& x : c0) x = rng.normal();
    const float alpha = 0.75f, beta = 1.f;
    std::vector<float> ref(c0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < out; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += ad[size_t(i * lda + k)] * bd[size_t(j * ldb + k)];
        ref[size_t(i * ldd + j)] = float(alpha * acc + beta * double(c0[size_t(i * ldd + j)]));
      }
    Dev<__half> da(ah.size()), db(bh.size());
    Dev<float> dd(c0.size());
    CT_CUDA(cudaMemcpy(da.p, ah.data(), ah.size() * 2, cudaMemcpyHostToDevice));
    CT_CUDA(cudaMemcpy(db.p, bh.data(), bh.size() * 2, cudaMemcpyHostToDevice));
    ct::up(dd, c0);
    g1.run_f16(n, out, K, da.p, lda, db.p, ldb, dd.p, ldd, alpha, beta, "q_proj f16");
    CT_CUDA(cudaDeviceSynchronize());
    const std::vector<float> got = ct::down(dd);
    // the padding between rows must be left alone
    bool pad_kept = true;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = out; j < ldd; ++j)
        pad_kept = pad_kept && got[size_t(i * ldd + j)] == c0[size_t(i * ldd + j)];
    ct::report("gemm", "f16 x f16 -> fp32, strided, accumulating, vs fp64", ct::rel_err(got, ref),
               1e-5);
    ct::report_bool("gemm", "f16 GEMM leaves D's row padding", pad_kept, "");
  }

  // LM-head chunks: {tokens, vocab, bytes per logit, expected chunk}: the fewest chunks whose
  // logits fit the 128 MiB budget, the tokens split evenly between them
  const int64_t chunks[][4] = {
      {8192, 32768, 2, 2048}, {8192, 32000, 2, 2048}, {8192, 131072, 2, 512},
      {4096, 32768, 2, 2048}, {900, 32768, 2, 900},   {3000, 32768, 2, 1500},
      {100, 32768, 2, 100},   {200, 262144, 2, 200},  {8192, 1 << 22, 2, 16},
      {8192, 32768, 4, 1024}, {8192, 32000, 4, 1024}, {5000, 32768, 4, 1000},
      {1000, 32768, 4, 1000}, {8192, 1 << 22, 4, 8},  {3, int64_t(1) << 27, 2, 1},
      {0, 32768, 2, 1}};
  const int64_t budget = lora4j::cuda::kLmHeadBudgetBytes;  // 128 MiB, the table's budget
  for (const auto& c : chunks) {
    const int64_t got = lora4j::cuda::lm_head_chunk_tokens(c[0], c[1], c[2], budget);
    const int64_t n_chunks = (c[0] + got - 1) / got;
    const bool fits = got * c[1] * c[2] <= budget || got == 1;
    // one chunk fewer would not fit
    const bool fewest =
        n_chunks <= 1 || ((c[0] + n_chunks - 2) / (n_chunks - 1)) * c[1] * c[2] > budget;
    ct::report_bool("gemm",
                    "lm_head chunk " + std::to_string(c[0]) + " tokens, vocab " +
                        std::to_string(c[1]) + ", " + std::to_string(c[2]) + " bytes a logit",
                    got == c[3] && fits && fewest,
                    std::to_string(got) + " (want " + std::to_string(c[3]) + ")");
  }
  if (!std::getenv("LORA4J_LM_HEAD_CHUNK_MIB"))  // the table's budget is the default one
    ct::report_bool("gemm", "lm_head default chunk budget 128 MiB",
                    lora4j::cuda::lm_head_budget_bytes() == budget,
                    std::to_string(lora4j::cuda::lm_head_budget_bytes()) + " bytes");
  CT_CUDA(cudaStreamDestroy(stream));
  std::printf("%d failures\n", ct::failures());
  return ct::failures() ? 1 : 0;
}
