// Robust aggregation kernels (aggregate.h): coordinate-wise rules (mean, median, trimmed mean,
// the centered-clipping update) with one thread per coordinate, and the sums over coordinates
// that Krum and centered clipping decide from as per-chunk partial sums, one block per (chunk,
// pair or worker), reduced in a fixed tree so that every run gives the same bits.
#include "cuda/kernels/aggregate.h"

#include <algorithm>
#include <vector>

#include "cuda/kernels/common.cuh"
#include "lora4j.h"
#include "model/aggregate_rules.h"

namespace lora4j {
namespace cuda {
namespace {

constexpr int kMaxRows = LORA4J_MAX_WORKERS;
constexpr int kThreads = 128;        // coordinate-wise kernels (a local array of n values each)
constexpr int kReduceThreads = 256;  // per-chunk sums

// Per-worker factors passed by value (the mean's weights, centered clipping's weights).
struct RowFactors {
  double v[kMaxRows];
};

// The rows a robust rule works on (the finite workers, in order), passed by value.
struct RowIndex {
  int32_t v[kMaxRows];
};

// Nearest-neighbour mixing: bit k of v[i] set when row k is in row i's mixture
// (agg::mix_neighbours), passed by value.
struct Neighbours {
  uint64_t v[kMaxRows];
};

// Every operation below that the host also performs is written with the rounded intrinsics,
// which the compiler never fuses into an FMA: the host build turns contraction off for
// aggregate.cpp, so both sides round every product and sum alike.

// Median (mode 0) or trimmed mean (mode 1, dropping f at each end) of each coordinate.
template <int kMode>
__global__ void sorted_rule_kernel(const float* __restrict__ rows, RowIndex r, int32_t n, int32_t f,
                                   int64_t numel, float* __restrict__ out) {
  float v[kMaxRows];
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < numel;
       j += int64_t(gridDim.x) * blockDim.x) {
    for (int32_t i = 0; i < n; ++i) v[i] = rows[int64_t(r.v[i]) * numel + j];
    for (int32_t i = 1; i < n; ++i) {  // insertion sort: the order is total, so it is unique
      float x = v[i];
      int32_t k = i - 1;
      while (k >= 0 && agg::order_less(x, v[k])) {
        v[k + 1] = v[k];
        --k;
      }
      v[k + 1] = x;
    }
    if (kMode == 0) {
      out[j] = n % 2 == 1
                   ? v[n / 2]
                   : float(__dmul_rn(0.5, __dadd_rn(double(v[n / 2 - 1]), double(v[n / 2]))));
    } else {
      double s = 0;
      for (int32_t i = f; i < n - f; ++i) s = __dadd_rn(s, double(v[i]));
      out[j] = float(__ddiv_rn(s, double(n - 2 * f)));
    }
  }
}

__global__ void mean_kernel(const float* __restrict__ rows, int32_t n, int64_t numel, RowFactors w,
                            float* __restrict__ out) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < numel;
       j += int64_t(gridDim.x) * blockDim.x) {
    double s = 0;
    for (int32_t i = 0; i < n; ++i)
      s = __dadd_rn(s, __dmul_rn(w.v[i], double(rows[int64_t(i) * numel + j])));
    out[j] = float(s);
  }
}

// flags[i] = 1 when row i has a value that is not finite (flags zeroed before; blockIdx.y is the
// row; every thread that finds one writes the same 1).
__global__ void nonfinite_rows_kernel(const float* __restrict__ rows, int64_t numel,
                                      int32_t* __restrict__ flags) {
  const float* x = rows + int64_t(blockIdx.y) * numel;
  bool bad = false;
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < numel;
       j += int64_t(gridDim.x) * blockDim.x)
    bad |= !isfinite(x[j]);
  if (bad) flags[blockIdx.y] = 1;
}

__device__ __forceinline__ double block_sum_f64(double v, double* scratch /*[kReduceThreads]*/) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (int(threadIdx.x) < o) scratch[threadIdx.x] += scratch[threadIdx.x + o];
    __syncthreads();
  }
  double r = scratch[0];
  __syncthreads();
  return r;
}

// part[c * pairs + p] = sum over chunk c of (x_i - x_k)^2 for the p-th pair i < k (row-major
// over i, then k).
__global__ void pair_partial_kernel(const float* __restrict__ rows, RowIndex r, int32_t n,
                                    int64_t numel, int64_t chunks, double* __restrict__ part) {
  __shared__ double scratch[kReduceThreads];
  const int32_t pairs = n * (n - 1) / 2;
  int32_t p = int32_t(blockIdx.x), i = 0;
  while (p >= n - 1 - i) {
    p -= n - 1 - i;
    ++i;
  }
  const int32_t k = i + 1 + p;
  const float* xi = rows + int64_t(r.v[i]) * numel;
  const float* xk = rows + int64_t(r.v[k]) * numel;
  for (int64_t c = blockIdx.y; c < chunks; c += gridDim.y) {
    const int64_t b = c * agg::kChunk, e = min(numel, b + agg::kChunk);
    double s = 0;
    for (int64_t j = b + threadIdx.x; j < e; j += blockDim.x) {
      double d = double(xi[j]) - double(xk[j]);
      s += d * d;
    }
    s = block_sum_f64(s, scratch);
    if (threadIdx.x == 0) part[c * pairs + blockIdx.x] = s;
  }
}

// part[c * n + i] = sum over chunk c of (x_i - v)^2.
__global__ void center_partial_kernel(const float* __restrict__ rows, RowIndex r,
                                      const double* __restrict__ v, int32_t n, int64_t numel,
                                      int64_t chunks, double* __restrict__ part) {
  __shared__ double scratch[kReduceThreads];
  const float* xi = rows + int64_t(r.v[blockIdx.x]) * numel;
  for (int64_t c = blockIdx.y; c < chunks; c += gridDim.y) {
    const int64_t b = c * agg::kChunk, e = min(numel, b + agg::kChunk);
    double s = 0;
    for (int64_t j = b + threadIdx.x; j < e; j += blockDim.x) {
      double d = double(xi[j]) - v[j];
      s += d * d;
    }
    s = block_sum_f64(s, scratch);
    if (threadIdx.x == 0) part[c * n + blockIdx.x] = s;
  }
}

__global__ void widen_kernel(const float* __restrict__ x, double* __restrict__ y, int64_t numel) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < numel;
       j += int64_t(gridDim.x) * blockDim.x)
    y[j] = double(x[j]);
}

__global__ void narrow_kernel(const double* __restrict__ x, float* __restrict__ y, int64_t numel) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < numel;
       j += int64_t(gridDim.x) * blockDim.x)
    y[j] = float(x[j]);
}

// One round of centered clipping: v += sum_i c_i (x_i - v) / n (workers with c_i = 0 skipped).
__global__ void clip_update_kernel(const float* __restrict__ rows, RowIndex r, int32_t n,
                                   int64_t numel, RowFactors c, double* __restrict__ v) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < numel;
       j += int64_t(gridDim.x) * blockDim.x) {
    const double vj = v[j];
    double s = 0;
    for (int32_t i = 0; i < n; ++i) {
      if (c.v[i] == 0.0) continue;
      s = __dadd_rn(s, __dmul_rn(c.v[i], __dsub_rn(double(rows[int64_t(r.v[i]) * numel + j]), vj)));
    }
    v[j] = __dadd_rn(vj, __ddiv_rn(s, double(n)));
  }
}

// Nearest-neighbour mixing: mixed row i (of m, one after another) = the mean of the rows in its
// mask, summed in index order in double and rounded once, as aggregate.cpp does.
__global__ void mix_kernel(const float* __restrict__ rows, RowIndex r, int32_t m, int64_t numel,
                           Neighbours nb, float* __restrict__ mixed) {
  float x[kMaxRows];
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < numel;
       j += int64_t(gridDim.x) * blockDim.x) {
    for (int32_t k = 0; k < m; ++k) x[k] = rows[int64_t(r.v[k]) * numel + j];
    for (int32_t i = 0; i < m; ++i) {
      const uint64_t bits = nb.v[i];
      double s = 0;
      int32_t count = 0;
      for (int32_t k = 0; k < m; ++k)
        if ((bits >> k) & 1u) {
          s = __dadd_rn(s, double(x[k]));
          ++count;
        }
      mixed[int64_t(i) * numel + j] = float(__ddiv_rn(s, double(count)));
    }
  }
}

int64_t chunk_count(int64_t numel) { return (numel + agg::kChunk - 1) / agg::kChunk; }
unsigned chunk_grid(int64_t chunks) { return unsigned(chunks < 65535 ? chunks : 65535); }
size_t align_up(size_t b) { return (b + 255) / 256 * 256; }

#define AGG_TRY(call)                         \
  do {                                        \
    cudaError_t agg_e_ = (call);              \
    if (agg_e_ != cudaSuccess) return agg_e_; \
  } while (0)

cudaError_t to_host(std::vector<double>* h, const double* d, size_t count, cudaStream_t s) {
  h->resize(count);
  AGG_TRY(cudaMemcpyAsync(h->data(), d, count * sizeof(double), cudaMemcpyDeviceToHost, s));
  return cudaStreamSynchronize(s);
}

// Distances of every row to the centre v (device): chunk sums on the device, totals on the host.
cudaError_t center_distances(const float* rows, const RowIndex& r, const double* v, int32_t n,
                             int64_t numel, double* part, std::vector<double>* dist,
                             cudaStream_t s) {
  const int64_t chunks = chunk_count(numel);
  center_partial_kernel<<<dim3(unsigned(n), chunk_grid(chunks)), kReduceThreads, 0, s>>>(
      rows, r, v, n, numel, chunks, part);
  AGG_TRY(cudaGetLastError());
  std::vector<double> h;
  AGG_TRY(to_host(&h, part, size_t(chunks) * size_t(n), s));
  dist->assign(size_t(n), 0.0);
  agg::sum_chunks(h.data(), chunks, n, n, true, dist->data());
  return cudaSuccess;
}

// The squared distances between every pair of the m rows r (m x m, row-major, +inf where not
// finite): chunk sums on the device (part: chunks x m(m-1)/2 doubles), totals on the host.
cudaError_t pair_distance_matrix(const float* rows, const RowIndex& r, int32_t m, int64_t numel,
                                 double* part, std::vector<double>* d, cudaStream_t s) {
  const int64_t chunks = chunk_count(numel);
  const int32_t pairs = m * (m - 1) / 2;
  d->assign(size_t(m) * size_t(m), 0.0);
  if (pairs == 0) return cudaSuccess;
  pair_partial_kernel<<<dim3(unsigned(pairs), chunk_grid(chunks)), kReduceThreads, 0, s>>>(
      rows, r, m, numel, chunks, part);
  AGG_TRY(cudaGetLastError());
  std::vector<double> h;
  AGG_TRY(to_host(&h, part, size_t(chunks) * size_t(pairs), s));
  std::vector<double> tot(static_cast<size_t>(pairs));
  agg::sum_chunks(h.data(), chunks, pairs, pairs, false, tot.data());
  for (int32_t i = 0, p = 0; i < m; ++i)
    for (int32_t k = i + 1; k < m; ++k, ++p) {
      (*d)[size_t(i) * size_t(m) + size_t(k)] = tot[size_t(p)];
      (*d)[size_t(k) * size_t(m) + size_t(i)] = tot[size_t(p)];
    }
  return cudaSuccess;
}

size_t pair_part_bytes(int32_t n, int64_t numel) {
  return align_up(size_t(chunk_count(numel)) * size_t(n) * size_t(n - 1) / 2 * sizeof(double));
}

// Bytes of nearest-neighbour mixing's part of the workspace: the n mixed rows and the pair sums.
size_t mix_bytes(int32_t rule, int32_t n, int64_t numel) {
  if (!agg::mixes(rule)) return 0;
  return align_up(size_t(n) * size_t(numel) * sizeof(float)) + pair_part_bytes(n, numel);
}

}  // namespace

// The robust rules' workspace starts with the non-finite flags of the rows, then (with mixing)
// the mixed rows and their pair sums; what the rule needs beyond them follows.
constexpr size_t kFlagBytes = (kMaxRows * sizeof(int32_t) + 255) / 256 * 256;

size_t aggregate_workspace_bytes(int32_t rule, int32_t n, int64_t numel) {
  const size_t chunks = size_t(chunk_count(numel));
  const size_t head = kFlagBytes + mix_bytes(rule, n, numel);
  switch (agg::base_rule(rule)) {
    case LORA4J_AGG_MEAN:
      return 0;
    case LORA4J_AGG_KRUM:
      return head + pair_part_bytes(n, numel);
    case LORA4J_AGG_CENTERED_CLIP:
      return head + align_up(size_t(numel) * sizeof(double)) +
             align_up(chunks * size_t(n) * sizeof(double));
    default:
      return head;
  }
}

cudaError_t aggregate_rows(int32_t rule, int32_t f, int32_t n, int64_t numel, const float* rows,
                           const float* weights, float* out, void* workspace, int32_t* selected,
                           int32_t* nonfinite, cudaStream_t s) {
  *selected = -1;
  *nonfinite = 0;
  if (n < 1 || n > kMaxRows || numel < 1) return cudaErrorInvalidValue;
  const unsigned grid = grid_for(numel, kThreads);
  if (rule == LORA4J_AGG_MEAN) {
    RowFactors w{};
    double total = 0;
    if (weights)
      for (int32_t i = 0; i < n; ++i) total += double(weights[i]);
    for (int32_t i = 0; i < n; ++i) w.v[i] = weights ? double(weights[i]) / total : 1.0 / double(n);
    mean_kernel<<<grid, kThreads, 0, s>>>(rows, n, numel, w, out);
    return cudaGetLastError();
  }
  // The robust rules: workers with a value that is not finite set aside, counted against f.
  int32_t* flags = static_cast<int32_t*>(workspace);
  void* rest = static_cast<char*>(workspace) + kFlagBytes + mix_bytes(rule, n, numel);
  AGG_TRY(cudaMemsetAsync(flags, 0, size_t(n) * sizeof(int32_t), s));
  const unsigned blocks_per_row = std::max(1u, grid_for(numel, 256) / unsigned(n));
  nonfinite_rows_kernel<<<dim3(blocks_per_row, unsigned(n)), 256, 0, s>>>(rows, numel, flags);
  AGG_TRY(cudaGetLastError());
  int32_t hflags[kMaxRows];
  AGG_TRY(cudaMemcpyAsync(hflags, flags, size_t(n) * sizeof(int32_t), cudaMemcpyDeviceToHost, s));
  AGG_TRY(cudaStreamSynchronize(s));
  RowIndex r{};
  int32_t m = 0;
  for (int32_t i = 0; i < n; ++i)
    if (!hflags[i]) r.v[m++] = i;
  *nonfinite = n - m;
  const int32_t fl = agg::f_after_nonfinite(rule, f, n, n - m);
  if (fl < 0) return cudaSuccess;  // refused: the caller reports it, out is not written
  if (agg::mixes(rule)) {
    // The finite rows mixed into m rows at the start of the mixing workspace; the rule then runs
    // on those, in order.
    float* mixed = reinterpret_cast<float*>(static_cast<char*>(workspace) + kFlagBytes);
    double* part = reinterpret_cast<double*>(static_cast<char*>(workspace) + kFlagBytes +
                                             align_up(size_t(n) * size_t(numel) * sizeof(float)));
    std::vector<double> d;
    AGG_TRY(pair_distance_matrix(rows, r, m, numel, part, &d, s));
    const std::vector<uint64_t> mask =
        agg::mix_neighbours(m, agg::mixing_f(rule, fl, n, n - m), d.data());
    Neighbours nb{};
    for (int32_t i = 0; i < m; ++i) nb.v[i] = mask[size_t(i)];
    mix_kernel<<<grid, kThreads, 0, s>>>(rows, r, m, numel, nb, mixed);
    AGG_TRY(cudaGetLastError());
    rows = mixed;
    for (int32_t i = 0; i < m; ++i) r.v[i] = i;
  }
  switch (agg::base_rule(rule)) {
    case LORA4J_AGG_MEDIAN:
      sorted_rule_kernel<0><<<grid, kThreads, 0, s>>>(rows, r, m, 0, numel, out);
      return cudaGetLastError();
    case LORA4J_AGG_TRIMMED_MEAN:
      sorted_rule_kernel<1><<<grid, kThreads, 0, s>>>(rows, r, m, fl, numel, out);
      return cudaGetLastError();
    case LORA4J_AGG_KRUM: {
      std::vector<double> d;
      AGG_TRY(pair_distance_matrix(rows, r, m, numel, static_cast<double*>(rest), &d, s));
      const int32_t k = r.v[agg::krum_pick(m, fl, d.data())];
      AGG_TRY(cudaMemcpyAsync(out, rows + int64_t(k) * numel, size_t(numel) * sizeof(float),
                              cudaMemcpyDeviceToDevice, s));
      *selected = k;
      return cudaSuccess;
    }
    case LORA4J_AGG_CENTERED_CLIP: {
      double* v = static_cast<double*>(rest);
      double* part = reinterpret_cast<double*>(static_cast<char*>(rest) +
                                               align_up(size_t(numel) * sizeof(double)));
      sorted_rule_kernel<0><<<grid, kThreads, 0, s>>>(rows, r, m, 0, numel, out);
      AGG_TRY(cudaGetLastError());
      widen_kernel<<<grid_for(numel, 256), 256, 0, s>>>(out, v, numel);
      AGG_TRY(cudaGetLastError());
      std::vector<double> d0;
      AGG_TRY(center_distances(rows, r, v, m, numel, part, &d0, s));
      const double tau = agg::centered_clip_tau(d0);
      if (!(tau > 0) || !std::isfinite(tau)) return cudaSuccess;  // the median stands
      for (int it = 0; it < agg::kCenteredClipIterations; ++it) {
        std::vector<double> d;
        if (it > 0) AGG_TRY(center_distances(rows, r, v, m, numel, part, &d, s));
        std::vector<double> c = agg::centered_clip_weights(it == 0 ? d0 : d, tau);
        RowFactors rc{};
        for (int32_t i = 0; i < m; ++i) rc.v[i] = c[size_t(i)];
        clip_update_kernel<<<grid, kThreads, 0, s>>>(rows, r, m, numel, rc, v);
        AGG_TRY(cudaGetLastError());
      }
      narrow_kernel<<<grid_for(numel, 256), 256, 0, s>>>(v, out, numel);
      return cudaGetLastError();
    }
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace lora4j
