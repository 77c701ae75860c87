// The aggregation rules of aggregate.h. Plain loops over host memory, split over threads in fixed
// chunks of coordinates; see the header for what each rule computes and tolerates.
#include "model/aggregate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "lora4j.h"
#include "model/aggregate_rules.h"
#include "model/engine.h"

namespace lora4j {
namespace {

using agg::kChunk;  // coordinates per chunk (fixed: determinism)

// Runs body(chunk, begin, end) for every chunk of [0, numel), chunks spread over threads. The
// result may depend on the chunk index, never on which thread ran it.
template <class F>
void for_chunks(int64_t numel, F&& body) {
  const int64_t chunks = (numel + kChunk - 1) / kChunk;
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  int64_t threads = std::min<int64_t>(std::min<int64_t>(hw, 32), chunks);
  auto run = [&](int64_t t) {
    for (int64_t c = t; c < chunks; c += threads) {
      body(c, c * kChunk, std::min(numel, (c + 1) * kChunk));
    }
  };
  if (threads <= 1) {
    run(0);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(size_t(threads - 1));
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(run, t);
  run(0);
  for (auto& th : pool) th.join();
}

int64_t chunk_count(int64_t numel) { return (numel + kChunk - 1) / kChunk; }

// The rows a robust rule works on: pointers to the workers' gradients, in worker order.
using Rows = std::vector<const float*>;

void median_into(const Rows& x, int64_t numel, float* out) {
  const int32_t n = int32_t(x.size());
  for_chunks(numel, [&](int64_t, int64_t b, int64_t e) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t j = b; j < e; ++j) {
      for (int32_t i = 0; i < n; ++i) v[size_t(i)] = x[size_t(i)][j];
      std::sort(v.begin(), v.end(), agg::order_less);
      out[j] = n % 2 == 1 ? v[size_t(n / 2)]
                          : float(0.5 * (double(v[size_t(n / 2 - 1)]) + double(v[size_t(n / 2)])));
    }
  });
}

void trimmed_mean_into(const Rows& x, int32_t f, int64_t numel, float* out) {
  const int32_t n = int32_t(x.size());
  for_chunks(numel, [&](int64_t, int64_t b, int64_t e) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t j = b; j < e; ++j) {
      for (int32_t i = 0; i < n; ++i) v[size_t(i)] = x[size_t(i)][j];
      std::sort(v.begin(), v.end(), agg::order_less);
      double s = 0;
      for (int32_t i = f; i < n - f; ++i) s += double(v[size_t(i)]);
      out[j] = float(s / double(n - 2 * f));
    }
  });
}

void mean_into(int32_t n, int64_t numel, const float* x, const float* weights, float* out) {
  std::vector<double> w(size_t(n), 1.0 / double(n));
  if (weights) {
    double total = 0;
    for (int32_t i = 0; i < n; ++i) total += double(weights[i]);
    for (int32_t i = 0; i < n; ++i) w[size_t(i)] = double(weights[i]) / total;
  }
  for_chunks(numel, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      double s = 0;
      for (int32_t i = 0; i < n; ++i) s += w[size_t(i)] * double(x[int64_t(i) * numel + j]);
      out[j] = float(s);
    }
  });
}

// The workers whose n rows of numel values are all finite, in order.
std::vector<int32_t> finite_rows(int32_t n, int64_t numel, const float* x) {
  const int64_t chunks = chunk_count(numel);
  std::vector<char> bad(size_t(chunks) * size_t(n), 0);
  for_chunks(numel, [&](int64_t c, int64_t b, int64_t e) {
    for (int32_t i = 0; i < n; ++i) {
      const float* xi = x + int64_t(i) * numel;
      for (int64_t j = b; j < e; ++j)
        if (!std::isfinite(xi[j])) {
          bad[size_t(c) * size_t(n) + size_t(i)] = 1;
          break;
        }
    }
  });
  std::vector<int32_t> keep;
  for (int32_t i = 0; i < n; ++i) {
    bool ok = true;
    for (int64_t c = 0; c < chunks && ok; ++c) ok = !bad[size_t(c) * size_t(n) + size_t(i)];
    if (ok) keep.push_back(i);
  }
  return keep;
}

// Squared distances between every pair of rows: d[i * n + j].
std::vector<double> pair_distances(const Rows& x, int64_t numel) {
  const int32_t n = int32_t(x.size());
  const int64_t chunks = chunk_count(numel);
  const size_t pairs = size_t(n) * size_t(n);
  std::vector<double> part(size_t(chunks) * pairs, 0.0);
  for_chunks(numel, [&](int64_t c, int64_t b, int64_t e) {
    double* p = part.data() + size_t(c) * pairs;
    for (int32_t i = 0; i < n; ++i)
      for (int32_t k = i + 1; k < n; ++k) {
        const float* xi = x[size_t(i)];
        const float* xk = x[size_t(k)];
        double s = 0;
        for (int64_t j = b; j < e; ++j) {
          double d = double(xi[j]) - double(xk[j]);
          s += d * d;
        }
        p[size_t(i) * size_t(n) + size_t(k)] = s;
      }
  });
  std::vector<double> d(pairs, 0.0);
  for (int32_t i = 0; i < n; ++i)
    for (int32_t k = i + 1; k < n; ++k) {
      double s = 0;
      for (int64_t c = 0; c < chunks; ++c)
        s += part[size_t(c) * pairs + size_t(i) * size_t(n) + size_t(k)];
      if (!std::isfinite(s)) s = std::numeric_limits<double>::infinity();
      d[size_t(i) * size_t(n) + size_t(k)] = s;
      d[size_t(k) * size_t(n) + size_t(i)] = s;
    }
  return d;
}

// Distance of every row to v (fixed chunk order). Non-finite: +inf.
std::vector<double> distances_to(const Rows& x, int64_t numel, const std::vector<double>& v) {
  const int32_t n = int32_t(x.size());
  const int64_t chunks = chunk_count(numel);
  std::vector<double> part(size_t(chunks) * size_t(n), 0.0);
  for_chunks(numel, [&](int64_t c, int64_t b, int64_t e) {
    for (int32_t i = 0; i < n; ++i) {
      const float* xi = x[size_t(i)];
      double s = 0;
      for (int64_t j = b; j < e; ++j) {
        double dd = double(xi[j]) - v[size_t(j)];
        s += dd * dd;
      }
      part[size_t(c) * size_t(n) + size_t(i)] = s;
    }
  });
  std::vector<double> dist(static_cast<size_t>(n));
  agg::sum_chunks(part.data(), chunks, n, n, true, dist.data());
  return dist;
}

// Nearest-neighbour mixing: each of the rows replaced by the mean of itself and its nearest
// others (agg::mix_neighbours with fm), written to store; returns the mixed rows, in order.
Rows mix_rows(const Rows& x, int32_t fm, int64_t numel, std::vector<float>* store) {
  const int32_t m = int32_t(x.size());
  const std::vector<double> d = pair_distances(x, numel);
  const std::vector<uint64_t> mask = agg::mix_neighbours(m, fm, d.data());
  store->assign(size_t(m) * size_t(numel), 0.f);
  float* y = store->data();
  for_chunks(numel, [&](int64_t, int64_t b, int64_t e) {
    for (int32_t i = 0; i < m; ++i) {
      float* yi = y + int64_t(i) * numel;
      const uint64_t bits = mask[size_t(i)];
      int32_t count = 0;
      for (int32_t k = 0; k < m; ++k) count += int32_t((bits >> k) & 1u);
      for (int64_t j = b; j < e; ++j) {
        double s = 0;
        for (int32_t k = 0; k < m; ++k)
          if ((bits >> k) & 1u) s += double(x[size_t(k)][j]);
        yi[j] = float(s / double(count));
      }
    }
  });
  Rows mixed;
  for (int32_t i = 0; i < m; ++i) mixed.push_back(y + int64_t(i) * numel);
  return mixed;
}

void centered_clip_into(const Rows& x, int64_t numel, float* out) {
  const int32_t n = int32_t(x.size());
  median_into(x, numel, out);
  std::vector<double> v(static_cast<size_t>(numel));
  for (int64_t j = 0; j < numel; ++j) v[size_t(j)] = double(out[j]);
  std::vector<double> d0 = distances_to(x, numel, v);
  const double tau = agg::centered_clip_tau(d0);
  if (!(tau > 0) || !std::isfinite(tau)) return;  // half the workers agree exactly: the median
  for (int it = 0; it < agg::kCenteredClipIterations; ++it) {
    std::vector<double> c =
        agg::centered_clip_weights(it == 0 ? d0 : distances_to(x, numel, v), tau);
    for_chunks(numel, [&](int64_t, int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) {
        double s = 0;
        for (int32_t i = 0; i < n; ++i) {
          if (c[size_t(i)] == 0.0) continue;
          s += c[size_t(i)] * (double(x[size_t(i)][j]) - v[size_t(j)]);
        }
        v[size_t(j)] += s / double(n);
      }
    });
  }
  for (int64_t j = 0; j < numel; ++j) out[j] = float(v[size_t(j)]);
}

std::string nf(int32_t n, int32_t f) {
  return "n = " + std::to_string(n) + " workers, f = " + std::to_string(f);
}

}  // namespace

const char* aggregation_name(int32_t rule) { return agg::rule_label(rule); }

void check_aggregation(int32_t rule, int32_t f, int32_t n) {
  check_arg(n >= 1, "aggregation needs at least one worker, got n = " + std::to_string(n));
  const int32_t base = agg::base_rule(rule);
  if (agg::mixes(rule))
    check_arg(base != LORA4J_AGG_MEAN && base != LORA4J_AGG_KRUM,
              std::string("nearest-neighbour mixing (LORA4J_AGG_MIX) goes with median,"
                          " trimmed-mean and centered-clip, not ") +
                  aggregation_name(base));
  switch (base) {
    case LORA4J_AGG_MEAN:
      return;
    case LORA4J_AGG_MEDIAN:
    case LORA4J_AGG_CENTERED_CLIP:
      check_arg(n >= 3, std::string(aggregation_name(rule)) +
                            " tolerates f < n/2 faulty workers and needs n >= 3 to tolerate one;"
                            " got n = " +
                            std::to_string(n) + " workers");
      return;
    case LORA4J_AGG_TRIMMED_MEAN:
      check_arg(
          f >= 0 && 2 * int64_t(f) < n,
          "trimmed-mean:f needs 0 <= f < n/2 (it drops f values at each end); got " + nf(n, f));
      return;
    case LORA4J_AGG_KRUM:
      check_arg(f >= 0 && int64_t(n) > 2 * int64_t(f) + 2,
                "krum:f needs n > 2f + 2 workers; got " + nf(n, f));
      return;
    default:
      fail(LORA4J_EINVAL, "unknown aggregation rule " + std::to_string(rule) +
                              " (LORA4J_AGG_MEAN .. LORA4J_AGG_CENTERED_CLIP, the robust ones"
                              " but Krum optionally | LORA4J_AGG_MIX)");
  }
}

void check_mean_weights(const float* weights, int32_t n) {
  if (!weights) return;
  double total = 0;
  for (int32_t i = 0; i < n; ++i) {
    check_arg(std::isfinite(weights[i]) && weights[i] >= 0,
              "weights[" + std::to_string(i) + "] must be finite and >= 0");
    total += double(weights[i]);
  }
  check_arg(total > 0, "the weights sum to 0");
}

int32_t aggregate(int32_t rule, int32_t f, int32_t n, int64_t numel, const float* workers,
                  const float* weights, float* out) {
  check_aggregation(rule, f, n);
  check_arg(numel >= 0, "numel must be >= 0");
  if (rule == LORA4J_AGG_MEAN) check_mean_weights(weights, n);
  if (rule == LORA4J_AGG_MEAN) {
    mean_into(n, numel, workers, weights, out);
    return -1;
  }
  const int32_t base = agg::base_rule(rule);
  // The robust rules: workers with a value that is not finite set aside, counted against f.
  const std::vector<int32_t> keep = finite_rows(n, numel, workers);
  const int32_t dropped = n - int32_t(keep.size());
  const int32_t f_left = agg::f_after_nonfinite(rule, f, n, dropped);
  if (f_left < 0) fail(LORA4J_EFAULTY, agg::nonfinite_refusal(rule, f, n, dropped));
  Rows rows;
  for (int32_t i : keep) rows.push_back(workers + int64_t(i) * numel);
  std::vector<float> mixed;
  if (agg::mixes(rule))
    rows = mix_rows(rows, agg::mixing_f(rule, f_left, n, dropped), numel, &mixed);
  switch (base) {
    case LORA4J_AGG_MEDIAN:
      median_into(rows, numel, out);
      return -1;
    case LORA4J_AGG_TRIMMED_MEAN:
      trimmed_mean_into(rows, f_left, numel, out);
      return -1;
    case LORA4J_AGG_KRUM: {
      std::vector<double> d = pair_distances(rows, numel);
      const int32_t k = keep[size_t(agg::krum_pick(int32_t(rows.size()), f_left, d.data()))];
      std::copy(workers + int64_t(k) * numel, workers + int64_t(k + 1) * numel, out);
      return k;
    }
    case LORA4J_AGG_CENTERED_CLIP:
      centered_clip_into(rows, numel, out);
      return -1;
    default:
      fail(LORA4J_EINTERNAL, "aggregate: unhandled rule");
  }
}

// ---- the default worker rows: host memory (the CPU backend's; CUDA keeps them on the device) --

void Engine::check_worker_rows(int32_t reserved, int32_t first, int32_t count) {
  check_arg(first >= 0 && count >= 0 && int64_t(first) + count <= reserved,
            "worker rows " + std::to_string(first) + " .. " + std::to_string(first + count - 1) +
                " are outside the " + std::to_string(reserved) +
                " reserved (lora4j_workers_reserve)");
}

void Engine::workers_reserve(int32_t rows) {
  check_arg(rows >= 0 && rows <= LORA4J_MAX_WORKERS, "worker rows must be in [0, " +
                                                         std::to_string(LORA4J_MAX_WORKERS) +
                                                         "], got " + std::to_string(rows));
  const int64_t numel = rows > 0 ? grad_numel() : 0;
  if (rows == 0) {
    std::vector<float>().swap(worker_rows_);
  } else {
    worker_rows_.resize(size_t(rows) * size_t(numel));
  }
  worker_capacity_ = rows;
}

void Engine::workers_gather(int32_t first) {
  check_worker_rows(worker_capacity_, first, 1);
  const int64_t numel = grad_numel();
  grad_get_flat(worker_rows_.data() + size_t(first) * size_t(numel), numel);
}

void Engine::workers_read(int32_t first, int32_t count, float* out) {
  check_worker_rows(worker_capacity_, first, count);
  const size_t numel = size_t(grad_numel());
  std::copy(worker_rows_.begin() + std::ptrdiff_t(size_t(first) * numel),
            worker_rows_.begin() + std::ptrdiff_t(size_t(first + count) * numel), out);
}

void Engine::workers_write(int32_t first, int32_t count, const float* data) {
  check_worker_rows(worker_capacity_, first, count);
  const size_t numel = size_t(grad_numel());
  std::copy(data, data + size_t(count) * numel,
            worker_rows_.begin() + std::ptrdiff_t(size_t(first) * numel));
}

int32_t Engine::workers_aggregate(int32_t rule, int32_t f, int32_t n, const float* weights) {
  check_worker_rows(worker_capacity_, 0, n);
  const int64_t numel = grad_numel();
  std::vector<float> out(static_cast<size_t>(numel));
  int32_t k = aggregate(rule, f, n, numel, worker_rows_.data(), weights, out.data());
  grad_set_flat(out.data(), numel);
  return k;
}

}  // namespace lora4j
