// times the SwiGLU backward variants at Mistral-7B's down (8192 tokens x 14336, r 16)
#include "kernels/swiglu.cu"
#include <cstdio>
using namespace lora4j::cuda;
int main() {
  const int64_t T = 8192, I = 14336; const int r = 16;
  size_t m = size_t(T * I);
  float* dh; bf16 *g, *u, *t, *A;
  cudaMalloc(&dh, m * 4); cudaMalloc(&g, m * 2); cudaMalloc(&u, m * 2);
  cudaMalloc(&t, T * r * 2); cudaMalloc(&A, r * I * 2);
  cudaMemset(dh, 0, m * 4); cudaMemset(g, 0, m * 2); cudaMemset(u, 0, m * 2);
  cudaMemset(t, 0, T * r * 2); cudaMemset(A, 0, r * I * 2);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  auto time = [&](const char* name, auto f) {
    for (int i = 0; i < 3; ++i) f();
    float best = 1e9;
    for (int rep = 0; rep < 5; ++rep) {
      cudaEventRecord(a); for (int i = 0; i < 10; ++i) f(); cudaEventRecord(b); cudaEventSynchronize(b);
      float ms; cudaEventElapsedTime(&ms, a, b); best = std::min(best, ms / 10);
    }
    printf("%-28s %.4f ms  %s\n", name, best, cudaGetErrorString(cudaGetLastError()));
  };
  time("plain backward", [&] { swiglu_backward(dh, g, u, g, u, int64_t(m), 0); });
  time("lora R=16 C=4 at r 16", [&] { launch_lora_vec<16, 4>(dh, t, r, A, r, 1.f, g, u, g, u, T, I, 0); });
  time("lora R=0 C=8 at r 16", [&] { launch_lora_vec<0, 8>(dh, t, r, A, r, 1.f, g, u, g, u, T, I, 0); });
  time("lora R=8 C=8 at r 8", [&] { launch_lora_vec<8, 8>(dh, t, 8, A, 8, 1.f, g, u, g, u, T, I, 0); });
  time("lora R=16 C=4 at r 8", [&] { launch_lora_vec<16, 4>(dh, t, 8, A, 8, 1.f, g, u, g, u, T, I, 0); });
  time("swiglu_backward_lora r 16", [&] { swiglu_backward_lora(dh, t, r, A, r, 1.f, g, u, g, u, T, I, 0); });
  return 0;
}
