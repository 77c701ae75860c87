// The aggregation rules of lora4j_aggregate against direct reference implementations written
// here from the definitions (sort every coordinate, compare every pair), on random inputs: many
// ties (values drawn from a few levels), duplicate workers, f at its bound, NaN and infinite
// workers, more coordinates than one chunk (so the threaded split is exercised). Coordinate-wise
// rules and Krum must match bitwise; centered clipping (sums over coordinates taken in another
// order) to 1e-6. The same with nearest-neighbour mixing first (LORA4J_AGG_MIX: the rule over
// reference mixtures), and mixing's point: one -8x worker pulls the mixed median and trimmed
// mean several times less than the plain ones. Workers with NaN or infinite values are set aside by
// the robust rules, which must then equal the references over the other workers with f lowered by
// as many (and refuse with LORA4J_EFAULTY when more are set aside than the rule tolerates). Also:
// refusals outside each rule's tolerance, run-to-run bitwise determinism, and the engine's flat
// gradient buffer (lora4j_grad_get_flat / set_flat, the group-of-one collectives, a CPU group of
// two refused).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "lora4j.h"
#include "test_util.h"
#include "model_config.h"

using testutil::check_err;
using testutil::check_true;

namespace {

using Rows = std::vector<float>;  // n rows of m values

float at(const Rows& x, int i, int64_t m, int64_t j) { return x[size_t(i * m + j)]; }

std::vector<float> column(const Rows& x, int n, int64_t m, int64_t j) {
  std::vector<float> v;
  for (int i = 0; i < n; ++i) v.push_back(at(x, i, m, j));
  // NaN sorts last
  std::sort(v.begin(), v.end(), [](float a, float b) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
    return a < b;
  });
  return v;
}

Rows ref_median(const Rows& x, int n, int64_t m) {
  Rows out(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) {
    auto v = column(x, n, m, j);
    out[size_t(j)] = n % 2 ? v[size_t(n / 2)]
                           : float(0.5 * (double(v[size_t(n / 2 - 1)]) + double(v[size_t(n / 2)])));
  }
  return out;
}

Rows ref_trimmed(const Rows& x, int n, int f, int64_t m) {
  Rows out(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) {
    auto v = column(x, n, m, j);
    double s = 0;
    for (int i = f; i < n - f; ++i) s += double(v[size_t(i)]);
    out[size_t(j)] = float(s / double(n - 2 * f));
  }
  return out;
}

Rows ref_mean(const Rows& x, int n, int64_t m, const std::vector<float>& w) {
  double total = 0;
  for (float v : w) total += double(v);
  Rows out(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) {
    double s = 0;
    for (int i = 0; i < n; ++i) s += double(w[size_t(i)]) / total * double(at(x, i, m, j));
    out[size_t(j)] = float(s);
  }
  return out;
}

double dist2(const Rows& x, int a, int b, int64_t m) {
  double s = 0;
  for (int64_t j = 0; j < m; ++j) {
    double d = double(at(x, a, m, j)) - double(at(x, b, m, j));
    s += d * d;
  }
  return std::isfinite(s) ? s : std::numeric_limits<double>::infinity();
}

int ref_krum(const Rows& x, int n, int f, int64_t m) {
  int best = -1;
  double best_score = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<double> d;
    for (int k = 0; k < n; ++k)
      if (k != i) d.push_back(dist2(x, i, k, m));
    std::sort(d.begin(), d.end());
    double s = 0;
    for (int k = 0; k < n - f - 2; ++k) s += d[size_t(k)];
    if (!std::isfinite(s)) s = std::numeric_limits<double>::infinity();
    if (best < 0 || s < best_score) {
      best = i;
      best_score = s;
    }
  }
  return best;
}

Rows ref_centered_clip(const Rows& x, int n, int64_t m) {
  Rows med = ref_median(x, n, m);
  std::vector<double> v(med.begin(), med.end());
  auto dist = [&](int i) {
    double s = 0;
    for (int64_t j = 0; j < m; ++j) {
      double d = double(at(x, i, m, j)) - v[size_t(j)];
      s += d * d;
    }
    return std::isfinite(s) ? std::sqrt(s) : std::numeric_limits<double>::infinity();
  };
  std::vector<double> d0;
  for (int i = 0; i < n; ++i) d0.push_back(dist(i));
  std::vector<double> s0 = d0;
  std::sort(s0.begin(), s0.end());
  double tau = n % 2 ? s0[size_t(n / 2)] : 0.5 * (s0[size_t(n / 2 - 1)] + s0[size_t(n / 2)]);
  if (!(tau > 0) || !std::isfinite(tau)) return med;
  for (int it = 0; it < 3; ++it) {
    std::vector<double> c;
    for (int i = 0; i < n; ++i) {
      double di = dist(i);
      c.push_back(!std::isfinite(di) ? 0.0 : std::min(1.0, tau / di));
    }
    std::vector<double> nv = v;
    for (int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (int i = 0; i < n; ++i)
        if (c[size_t(i)] > 0) s += c[size_t(i)] * (double(at(x, i, m, j)) - v[size_t(j)]);
      nv[size_t(j)] = v[size_t(j)] + s / n;
    }
    v = nv;
  }
  return Rows(v.begin(), v.end());
}

// Nearest-neighbour mixing from its definition: row i becomes the mean of itself and its
// m - fm - 1 nearest others (squared distance, ties to the lower index), summed in index order.
Rows ref_mix(const Rows& x, int n, int64_t m, int fm) {
  Rows out(size_t(n) * size_t(m));
  for (int i = 0; i < n; ++i) {
    std::vector<std::pair<double, int>> others;
    for (int k = 0; k < n; ++k)
      if (k != i) others.push_back({dist2(x, i, k, m), k});
    std::sort(others.begin(), others.end());  // by distance, then index
    std::vector<bool> in(size_t(n), false);
    in[size_t(i)] = true;
    for (int k = 0; k < n - fm - 1; ++k) in[size_t(others[size_t(k)].second)] = true;
    int count = 0;
    for (int k = 0; k < n; ++k) count += in[size_t(k)] ? 1 : 0;
    for (int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (int k = 0; k < n; ++k)
        if (in[size_t(k)]) s += double(at(x, k, m, j));
      out[size_t(i * m + j)] = float(s / double(count));
    }
  }
  return out;
}

// The workers whose values are all finite (the robust rules set the others aside): their rows
// and how many.
Rows finite_workers(const Rows& x, int n, int64_t m, int* kept) {
  Rows out;
  *kept = 0;
  for (int i = 0; i < n; ++i) {
    bool ok = true;
    for (int64_t j = 0; j < m; ++j) ok = ok && std::isfinite(at(x, i, m, j));
    if (!ok) continue;
    out.insert(out.end(), x.begin() + i * m, x.begin() + (i + 1) * m);
    ++*kept;
  }
  return out;
}

bool bitwise(const Rows& a, const Rows& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

Rows run(int rule, int f, int n, int64_t m, const Rows& x, const float* w, int* selected) {
  Rows out(size_t(m), -7.f);
  int32_t sel = -2;
  int rc = lora4j_aggregate(rule, f, n, m, x.data(), w, out.data(), &sel);
  if (rc != LORA4J_OK) {
    check_true("lora4j_aggregate rule " + std::to_string(rule) + " n " + std::to_string(n), false,
               lora4j_last_error());
  }
  if (selected) *selected = sel;
  return out;
}

// n workers: either continuous values or a few levels (ties); optionally duplicate rows.
Rows make_rows(testutil::Rng& rng, int n, int64_t m, bool levels, bool duplicates) {
  Rows x(static_cast<size_t>(n * m));
  for (float& v : x) v = levels ? float(rng.below(5) - 2) * 0.5f : rng.uniform(-1, 1);
  if (duplicates && n >= 3)
    std::copy(x.begin(), x.begin() + m, x.begin() + 2 * m);  // row 2 = row 0
  return x;
}

void expect_refused(const std::string& what, int rule, int f, int n, const std::string& needle) {
  Rows x(size_t(n) * 4, 1.f), out(4);
  int rc = lora4j_aggregate(rule, f, n, 4, x.data(), nullptr, out.data(), nullptr);
  std::string msg = lora4j_last_error();
  check_true(what, rc == LORA4J_EINVAL && msg.find(needle) != std::string::npos,
             "status " + std::to_string(rc) + ", message: " + msg);
}

void engine_flat_buffer() {
  lora4j_model_config c = testutil::tiny_config();
  lora4j_engine_options o{};
  o.device = LORA4J_DEVICE_CPU;
  o.num_threads = 2;
  lora4j_engine* e = nullptr;
  if (lora4j_engine_create(&c, &o, &e) != LORA4J_OK) {
    check_true("engine create", false, lora4j_last_error());
    return;
  }
  testutil::Rng rng(7);
  int32_t count = 0;
  lora4j_weight_count(&c, &count);
  for (int32_t i = 0; i < count; ++i) {
    char name[256];
    int32_t ndim = 0, layer = 0, slot = 0;
    int64_t shape[2] = {1, 1};
    lora4j_weight_info(&c, i, name, sizeof name, &ndim, shape, &layer, &slot);
    std::vector<float> w(size_t(shape[0] * (ndim == 2 ? shape[1] : 1)));
    if (ndim == 1)
      std::fill(w.begin(), w.end(), 1.f);
    else
      rng.fill(w, -0.2f, 0.2f);
    lora4j_engine_set_weight(e, name, LORA4J_DTYPE_F32, w.data(), int64_t(w.size()));
  }
  int64_t numel = 0;
  check_true("grad_flat_numel without adapter refused",
             lora4j_grad_flat_numel(e, &numel) == LORA4J_ESTATE);
  lora4j_lora_attach(e, 4, 2.f, 0x7fu);
  lora4j_grad_flat_numel(e, &numel);
  int32_t ntensors = 0;
  lora4j_lora_count(e, &ntensors);
  int64_t total = 0;
  std::vector<std::pair<std::string, int64_t>> tensors;
  for (int32_t i = 0; i < ntensors; ++i) {
    char name[256];
    int64_t r = 0, cc = 0;
    lora4j_lora_info(e, i, name, sizeof name, &r, &cc);
    tensors.push_back({name, r * cc});
    total += r * cc;
  }
  check_true("grad_flat_numel is the sum of the LoRA tensors", numel == total,
             std::to_string(numel) + " vs " + std::to_string(total));
  // B nonzero so that every gradient is nonzero
  for (auto& t : tensors) {
    std::vector<float> v(size_t(t.second));
    rng.fill(v, -0.3f, 0.3f);
    lora4j_lora_set(e, LORA4J_STATE_PARAM, t.first.c_str(), LORA4J_DTYPE_F32, v.data(), t.second);
  }
  std::vector<int32_t> ids(12), labels(12);
  for (int k = 0; k < 12; ++k) ids[size_t(k)] = labels[size_t(k)] = int32_t(rng.below(37));
  lora4j_batch b{1, 12, ids.data(), nullptr, labels.data(), nullptr, nullptr};
  double sum = 0;
  int64_t tokens = 0;
  lora4j_zero_grad(e);
  lora4j_forward_backward(e, &b, 0.1f, &sum, &tokens);
  std::vector<float> flat(static_cast<size_t>(numel)), pieces;
  check_true("grad_get_flat", lora4j_grad_get_flat(e, flat.data(), numel) == LORA4J_OK,
             lora4j_last_error());
  for (auto& t : tensors) {
    std::vector<float> g(size_t(t.second));
    lora4j_lora_get(e, LORA4J_STATE_GRAD, t.first.c_str(), g.data(), t.second);
    pieces.insert(pieces.end(), g.begin(), g.end());
  }
  check_true("grad_get_flat equals the tensors' gradients in lora_info order",
             bitwise(flat, pieces));
  double norm0 = 0;
  lora4j_grad_norm(e, &norm0);
  std::vector<float> twice(flat);
  for (float& v : twice) v *= 2;
  lora4j_grad_set_flat(e, twice.data(), numel);
  double norm1 = 0;
  lora4j_grad_norm(e, &norm1);
  check_err("grad_set_flat(2 g): the norm doubles", std::fabs(norm1 / norm0 - 2.0), 1e-6);
  std::vector<float> back(static_cast<size_t>(numel));
  lora4j_grad_get_flat(e, back.data(), numel);
  check_true("grad_set_flat then get_flat round-trips bitwise", bitwise(back, twice));
  int rc = lora4j_grad_get_flat(e, back.data(), numel - 1);
  check_true(
      "grad_get_flat with a wrong numel refused",
      rc == LORA4J_EINVAL &&
          std::string(lora4j_last_error()).find("lora4j_grad_flat_numel") != std::string::npos,
      lora4j_last_error());
  // a group of one: the collectives change nothing; a CPU group of two is refused
  uint8_t id[LORA4J_DIST_ID_BYTES] = {};
  rc = lora4j_dist_init(e, id, LORA4J_DIST_ID_BYTES, 2, 1);
  check_true("dist_init world 2 on the CPU refused",
             rc == LORA4J_EUNSUPPORTED &&
                 std::string(lora4j_last_error()).find("NCCL") != std::string::npos,
             lora4j_last_error());
  rc = lora4j_dist_init(e, nullptr, 0, 1, 1);
  check_true("dist_init rank outside the group refused", rc == LORA4J_EINVAL, lora4j_last_error());
  rc = lora4j_dist_init(e, nullptr, 0, 1, 0);
  check_true("dist_init world 1", rc == LORA4J_OK, lora4j_last_error());
  lora4j_dist_allreduce_grad(e);
  std::vector<float> gathered(static_cast<size_t>(numel));
  lora4j_dist_allgather_grad(e, gathered.data(), numel);
  check_true("group of one: all-reduce and all-gather leave the gradients",
             bitwise(gathered, twice));
  double vals[2] = {1.5, -2};
  rc = lora4j_dist_allreduce_f64(e, vals, 2);
  check_true("group of one: all-reduce of doubles leaves them",
             rc == LORA4J_OK && vals[0] == 1.5 && vals[1] == -2, lora4j_last_error());

  // Worker rows (lora4j_workers_*): rows written from the host and one gathered from the
  // gradients; every rule over them replaces the gradients with lora4j_aggregate's result.
  const int n = 5;
  Rows x = make_rows(rng, n, numel, false, false);
  rc = lora4j_workers_aggregate(e, LORA4J_AGG_MEDIAN, 0, n, nullptr, nullptr);
  check_true(
      "workers_aggregate before workers_reserve refused",
      rc == LORA4J_EINVAL && std::string(lora4j_last_error()).find("reserved") != std::string::npos,
      lora4j_last_error());
  check_true("workers_reserve", lora4j_workers_reserve(e, n) == LORA4J_OK);
  lora4j_workers_write(e, 0, n - 1, x.data());
  lora4j_grad_set_flat(e, x.data() + (n - 1) * numel, numel);
  check_true("workers_gather", lora4j_workers_gather(e, n - 1) == LORA4J_OK, lora4j_last_error());
  Rows rows_back(x.size());
  lora4j_workers_read(e, 0, n, rows_back.data());
  check_true("workers write + gather + read round-trip bitwise", bitwise(rows_back, x));
  std::vector<float> w = {3, 1, 4, 1, 5};
  for (int rule :
       {LORA4J_AGG_MEAN, LORA4J_AGG_MEDIAN, LORA4J_AGG_TRIMMED_MEAN, LORA4J_AGG_KRUM,
        LORA4J_AGG_CENTERED_CLIP, LORA4J_AGG_MEDIAN | LORA4J_AGG_MIX,
        LORA4J_AGG_TRIMMED_MEAN | LORA4J_AGG_MIX, LORA4J_AGG_CENTERED_CLIP | LORA4J_AGG_MIX}) {
    const int base = rule & ~LORA4J_AGG_MIX;
    const int f = base == LORA4J_AGG_TRIMMED_MEAN ? 2 : (base == LORA4J_AGG_KRUM ? 1 : 0);
    const float* wp = rule == LORA4J_AGG_MEAN ? w.data() : nullptr;
    int32_t sel = -2;
    rc = lora4j_workers_aggregate(e, rule, f, n, wp, &sel);
    Rows got(static_cast<size_t>(numel));
    lora4j_grad_get_flat(e, got.data(), numel);
    int want_sel = -2;
    Rows want = run(rule, f, n, numel, x, wp, &want_sel);
    check_true("workers_aggregate rule " + std::to_string(rule) + " equals lora4j_aggregate",
               rc == LORA4J_OK && sel == want_sel && bitwise(got, want), lora4j_last_error());
  }
  rc = lora4j_workers_gather(e, n);
  check_true("workers_gather beyond the reserved rows refused", rc == LORA4J_EINVAL,
             lora4j_last_error());
  rc = lora4j_workers_reserve(e, LORA4J_MAX_WORKERS + 1);
  check_true("workers_reserve above LORA4J_MAX_WORKERS refused", rc == LORA4J_EINVAL,
             lora4j_last_error());
  rc = lora4j_workers_aggregate(e, LORA4J_AGG_KRUM, 2, n, nullptr, nullptr);
  check_true("workers_aggregate krum:2 over 5 workers refused",
             rc == LORA4J_EINVAL &&
                 std::string(lora4j_last_error()).find("n > 2f + 2") != std::string::npos,
             lora4j_last_error());
  check_true("workers_reserve(0) frees the rows", lora4j_workers_reserve(e, 0) == LORA4J_OK);

  // lora4j_dist_abort: thread-safe (called here from another thread); the reason is kept and
  // every later collective fails with it; the rest of the engine keeps working
  double norm_before = 0;
  lora4j_grad_norm(e, &norm_before);
  check_true("dist_abort with a null reason refused",
             lora4j_dist_abort(e, nullptr) == LORA4J_EINVAL, lora4j_last_error());
  int abort_rc = -1;
  std::thread aborter([&] { abort_rc = lora4j_dist_abort(e, "rank 1 was lost (test)"); });
  aborter.join();
  check_true("dist_abort from another thread", abort_rc == LORA4J_OK);
  check_true("dist_abort a second time", lora4j_dist_abort(e, "later reason") == LORA4J_OK);
  auto names_reason = [&](int status) {
    return status == LORA4J_EDEVICE &&
           std::string(lora4j_last_error()).find("rank 1 was lost (test)") != std::string::npos;
  };
  check_true("after dist_abort the all-reduce fails naming the reason",
             names_reason(lora4j_dist_allreduce_grad(e)), lora4j_last_error());
  check_true("after dist_abort the all-gather fails naming the reason",
             names_reason(lora4j_dist_allgather_grad(e, gathered.data(), numel)),
             lora4j_last_error());
  check_true("after dist_abort the scalar all-reduce fails naming the reason",
             names_reason(lora4j_dist_allreduce_f64(e, vals, 2)), lora4j_last_error());
  double norm2 = 0;
  check_true("after dist_abort the engine still computes",
             lora4j_grad_norm(e, &norm2) == LORA4J_OK && norm2 == norm_before,
             "norm " + std::to_string(norm2) + " vs " + std::to_string(norm_before));
  lora4j_engine_destroy(e);
  check_true("dist_abort on a null engine refused",
             lora4j_dist_abort(nullptr, "x") == LORA4J_EINVAL, lora4j_last_error());
}

}  // namespace

int main() {
  testutil::Rng rng(2024);
  const int64_t big = 70000;  // > 2 chunks of 32768 coordinates
  for (int n : {3, 4, 5, 6, 7, 8, 12}) {
    for (int variant = 0; variant < 3; ++variant) {
      bool levels = variant >= 1, dup = variant == 2;
      int64_t m = n == 8 ? big : 257;
      Rows x = make_rows(rng, n, m, levels, dup);
      std::string tag = " n=" + std::to_string(n) + (levels ? " ties" : "") + (dup ? " dup" : "") +
                        " m=" + std::to_string(m);
      check_true("median" + tag, bitwise(run(LORA4J_AGG_MEDIAN, 0, n, m, x, nullptr, nullptr),
                                         ref_median(x, n, m)));
      for (int f = 0; 2 * f < n; ++f) {  // up to f at its bound
        check_true("trimmed-mean:" + std::to_string(f) + tag,
                   bitwise(run(LORA4J_AGG_TRIMMED_MEAN, f, n, m, x, nullptr, nullptr),
                           ref_trimmed(x, n, f, m)));
      }
      for (int f = 0; n > 2 * f + 2; ++f) {
        int sel = -1;
        Rows got = run(LORA4J_AGG_KRUM, f, n, m, x, nullptr, &sel);
        int want = ref_krum(x, n, f, m);
        Rows wrow(x.begin() + want * m, x.begin() + (want + 1) * m);
        check_true("krum:" + std::to_string(f) + tag, sel == want && bitwise(got, wrow),
                   "selected " + std::to_string(sel) + ", reference " + std::to_string(want));
      }
      Rows cc = run(LORA4J_AGG_CENTERED_CLIP, 0, n, m, x, nullptr, nullptr);
      check_err("centered-clip" + tag, testutil::rel_err(cc, ref_centered_clip(x, n, m), size_t(m)),
                1e-6);
      std::vector<float> w(static_cast<size_t>(n));
      for (float& v : w) v = float(1 + rng.below(50));
      check_true(
          "mean (token weights)" + tag,
          bitwise(run(LORA4J_AGG_MEAN, 0, n, m, x, w.data(), nullptr), ref_mean(x, n, m, w)));
      std::vector<float> ones(size_t(n), 1.f);
      check_true(
          "mean (equal weights)" + tag,
          bitwise(run(LORA4J_AGG_MEAN, 0, n, m, x, nullptr, nullptr), ref_mean(x, n, m, ones)));
      // nearest-neighbour mixing first: the rule over the reference mixtures (f: the rule's)
      const int mix_med = LORA4J_AGG_MEDIAN | LORA4J_AGG_MIX;
      check_true("median, mixed" + tag, bitwise(run(mix_med, 0, n, m, x, nullptr, nullptr),
                                                ref_median(ref_mix(x, n, m, (n - 1) / 2), n, m)));
      for (int f = 0; 2 * f < n; ++f) {
        check_true(
            "trimmed-mean:" + std::to_string(f) + ", mixed" + tag,
            bitwise(run(LORA4J_AGG_TRIMMED_MEAN | LORA4J_AGG_MIX, f, n, m, x, nullptr, nullptr),
                    ref_trimmed(ref_mix(x, n, m, f), n, f, m)));
      }
      check_err("centered-clip, mixed" + tag,
                testutil::rel_err(
                    run(LORA4J_AGG_CENTERED_CLIP | LORA4J_AGG_MIX, 0, n, m, x, nullptr, nullptr),
                    ref_centered_clip(ref_mix(x, n, m, (n - 1) / 2), n, m), size_t(m)),
                1e-6);
      // determinism: a second call gives the same bits
      check_true("centered-clip deterministic" + tag,
                 bitwise(cc, run(LORA4J_AGG_CENTERED_CLIP, 0, n, m, x, nullptr, nullptr)));
    }
  }

  // Krum's ties: identical rows score the same; the lowest index wins.
  {
    const int n = 6;
    const int64_t m = 16;
    Rows x(size_t(n * m), 0.f);
    for (int i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) x[size_t(i * m + j)] = i < 4 ? 1.f : float(10 + i);
    int sel = -1;
    run(LORA4J_AGG_KRUM, 1, n, m, x, nullptr, &sel);
    check_true("krum: identical best rows, lowest index selected", sel == 0,
               "selected " + std::to_string(sel));
  }

  // One faulty worker with NaN, one with +inf, one scaled by -100: robust rules stay finite and
  // near the honest workers; the mean does not.
  {
    const int n = 7;
    const int64_t m = 40000;
    Rows x(static_cast<size_t>(n * m));
    for (int i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) x[size_t(i * m + j)] = 1.f + 0.01f * rng.uniform(-1, 1);
    Rows bad = x;
    for (int64_t j = 0; j < m; ++j)
      bad[size_t(1 * m + j)] = std::numeric_limits<float>::quiet_NaN();
    for (int64_t j = 0; j < m; ++j) bad[size_t(4 * m + j)] = std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < m; ++j) bad[size_t(6 * m + j)] *= -100.f;
    auto near_one = [&](const Rows& r) {
      double worst = 0;
      for (float v : r)
        worst = std::max(worst, std::isfinite(v) ? std::fabs(double(v) - 1.0) : 1e30);
      return worst;
    };
    check_err("median with NaN, inf and -100x workers: |g - 1|",
              near_one(run(LORA4J_AGG_MEDIAN, 0, n, m, bad, nullptr, nullptr)), 0.011);
    int kept = 0;
    Rows good = finite_workers(bad, n, m, &kept);
    check_true("median with NaN and inf workers: the median of the other 5",
               kept == 5 && bitwise(run(LORA4J_AGG_MEDIAN, 0, n, m, bad, nullptr, nullptr),
                                    ref_median(good, 5, m)));
    check_err("trimmed-mean:3 with NaN, inf and -100x workers: |g - 1|",
              near_one(run(LORA4J_AGG_TRIMMED_MEAN, 3, n, m, bad, nullptr, nullptr)), 0.011);
    check_true("trimmed-mean:3 with NaN and inf workers: trimmed-mean:1 of the other 5",
               bitwise(run(LORA4J_AGG_TRIMMED_MEAN, 3, n, m, bad, nullptr, nullptr),
                       ref_trimmed(good, 5, 1, m)));
    check_true("trimmed-mean:2 with NaN and inf workers: the mean of the other 5",
               bitwise(run(LORA4J_AGG_TRIMMED_MEAN, 2, n, m, bad, nullptr, nullptr),
                       ref_trimmed(good, 5, 0, m)));
    int sel = -1;
    run(LORA4J_AGG_KRUM, 2, n, m, bad, nullptr, &sel);
    check_true("krum:2 selects an honest worker", sel != 1 && sel != 4 && sel != 6,
               "selected " + std::to_string(sel));
    Rows cc = run(LORA4J_AGG_CENTERED_CLIP, 0, n, m, bad, nullptr, nullptr);
    check_err("centered-clip with NaN, inf and -100x workers: |g - 1|", near_one(cc), 0.011);
    check_err("centered-clip with NaN and inf workers vs the reference over the other 5",
              testutil::rel_err(cc, ref_centered_clip(good, 5, m), size_t(m)), 1e-6);
    Rows mean = run(LORA4J_AGG_MEAN, 0, n, m, bad, nullptr, nullptr);
    check_true("mean with a NaN worker is NaN", std::isnan(mean[0]));
  }

  // Random inputs with d non-finite workers (NaN or +-inf, in whole rows or single values): every
  // robust rule equals its reference over the finite workers with f - d, up to f = d; one more
  // than the rule tolerates is refused with LORA4J_EFAULTY, out not written.
  for (int n : {3, 5, 6, 8, 9}) {
    const int64_t m = n == 8 ? 70000 : 301;
    for (int d = 1; 2 * d < n + 2; ++d) {
      Rows x = make_rows(rng, n, m, d % 2 == 0, false);
      std::vector<int> order(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) order[size_t(i)] = i;
      for (int i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[rng.below(i + 1)]);
      for (int k = 0; k < d; ++k) {
        const int row = order[size_t(k)];
        const float bad_value = k % 3 == 0   ? std::numeric_limits<float>::quiet_NaN()
                                : k % 3 == 1 ? std::numeric_limits<float>::infinity()
                                             : -std::numeric_limits<float>::infinity();
        if (k % 2 == 0) {
          for (int64_t j = 0; j < m; ++j) x[size_t(row * m + j)] = bad_value;
        } else {
          x[size_t(row * m + rng.below(int(m)))] = bad_value;  // one value is enough
        }
      }
      int kept = 0;
      Rows good = finite_workers(x, n, m, &kept);
      const std::string tag = " n=" + std::to_string(n) + " d=" + std::to_string(d);
      std::string why;
      auto refused = [&](int rule, int f) {
        Rows out(size_t(m), -7.f);
        int rc = lora4j_aggregate(rule, f, n, m, x.data(), nullptr, out.data(), nullptr);
        std::string msg = lora4j_last_error();
        why = msg;
        return rc == LORA4J_EFAULTY &&
               msg.find(std::to_string(d) + " of " + std::to_string(n) + " workers") !=
                   std::string::npos &&
               out[0] == -7.f;
      };
      check_true("kept workers" + tag, kept == n - d);
      if (2 * d < n) {
        check_true("median" + tag, bitwise(run(LORA4J_AGG_MEDIAN, 0, n, m, x, nullptr, nullptr),
                                           ref_median(good, kept, m)));
        check_err("centered-clip" + tag,
                  testutil::rel_err(run(LORA4J_AGG_CENTERED_CLIP, 0, n, m, x, nullptr, nullptr),
                                    ref_centered_clip(good, kept, m), size_t(m)),
                  1e-6);
        // mixing over the finite workers allows for the (n - 1) / 2 - d faulty ones left
        const Rows mixed = ref_mix(good, kept, m, (n - 1) / 2 - d);
        check_true("median, mixed" + tag,
                   bitwise(run(LORA4J_AGG_MEDIAN | LORA4J_AGG_MIX, 0, n, m, x, nullptr, nullptr),
                           ref_median(mixed, kept, m)));
        check_err("centered-clip, mixed" + tag,
                  testutil::rel_err(
                      run(LORA4J_AGG_CENTERED_CLIP | LORA4J_AGG_MIX, 0, n, m, x, nullptr, nullptr),
                      ref_centered_clip(mixed, kept, m), size_t(m)),
                  1e-6);
      } else {
        bool r = refused(LORA4J_AGG_MEDIAN, 0);
        check_true("median refused" + tag, r, why);
        r = refused(LORA4J_AGG_CENTERED_CLIP, 0);
        check_true("centered-clip refused" + tag, r, why);
        r = refused(LORA4J_AGG_MEDIAN | LORA4J_AGG_MIX, 0);
        check_true("median, mixed, refused" + tag, r, why);
        r = refused(LORA4J_AGG_CENTERED_CLIP | LORA4J_AGG_MIX, 0);
        check_true("centered-clip, mixed, refused" + tag, r, why);
      }
      for (int f = 0; 2 * f < n; ++f) {
        const std::string tf = ":" + std::to_string(f) + tag;
        if (d > f) {
          bool r = refused(LORA4J_AGG_TRIMMED_MEAN, f);
          check_true("trimmed-mean refused" + tf, r, why);
          r = refused(LORA4J_AGG_TRIMMED_MEAN | LORA4J_AGG_MIX, f);
          check_true("trimmed-mean, mixed, refused" + tf, r, why);
        } else {
          check_true("trimmed-mean" + tf,
                     bitwise(run(LORA4J_AGG_TRIMMED_MEAN, f, n, m, x, nullptr, nullptr),
                             ref_trimmed(good, kept, f - d, m)));
          check_true(
              "trimmed-mean, mixed" + tf,
              bitwise(run(LORA4J_AGG_TRIMMED_MEAN | LORA4J_AGG_MIX, f, n, m, x, nullptr, nullptr),
                      ref_trimmed(ref_mix(good, kept, m, f - d), kept, f - d, m)));
        }
      }
      for (int f = 0; n > 2 * f + 2; ++f) {
        const std::string tf = ":" + std::to_string(f) + tag;
        if (d > f) {
          bool r = refused(LORA4J_AGG_KRUM, f);
          check_true("krum refused" + tf, r, why);
          continue;
        }
        int sel = -1;
        Rows got = run(LORA4J_AGG_KRUM, f, n, m, x, nullptr, &sel);
        int want = ref_krum(good, kept, f - d, m);  // an index among the finite workers
        int want_row = -1;
        for (int i = 0, seen = 0; i < n; ++i) {
          bool ok = true;
          for (int64_t j = 0; j < m; ++j) ok = ok && std::isfinite(at(x, i, m, j));
          if (ok && seen++ == want) want_row = i;
        }
        Rows wrow(x.begin() + want_row * m, x.begin() + (want_row + 1) * m);
        check_true("krum" + tf, sel == want_row && bitwise(got, wrow),
                   "selected " + std::to_string(sel) + ", reference " + std::to_string(want_row));
      }
    }
  }

  // Refusals outside each rule's tolerance, naming the rule.
  expect_refused("median over 2 workers refused", LORA4J_AGG_MEDIAN, 0, 2, "median");
  expect_refused("centered-clip over 2 workers refused", LORA4J_AGG_CENTERED_CLIP, 0, 2,
                 "centered-clip");
  expect_refused("trimmed-mean:3 over 6 workers refused (2f < n)", LORA4J_AGG_TRIMMED_MEAN, 3, 6,
                 "trimmed-mean");
  expect_refused("trimmed-mean:-1 refused", LORA4J_AGG_TRIMMED_MEAN, -1, 6, "trimmed-mean");
  expect_refused("krum:2 over 6 workers refused (n > 2f + 2)", LORA4J_AGG_KRUM, 2, 6, "n > 2f + 2");
  expect_refused("krum:0 over 2 workers refused", LORA4J_AGG_KRUM, 0, 2, "krum");
  expect_refused("unknown rule refused", 9, 0, 6, "unknown aggregation rule");
  expect_refused(
      "mixing with the mean refused", LORA4J_AGG_MEAN | LORA4J_AGG_MIX, 0, 6,
      "mixing (LORA4J_AGG_MIX) goes with median, trimmed-mean and centered-clip, not mean");
  expect_refused("mixing with krum refused", LORA4J_AGG_KRUM | LORA4J_AGG_MIX, 1, 6, "not krum");
  expect_refused("median, mixed, over 2 workers refused", LORA4J_AGG_MEDIAN | LORA4J_AGG_MIX, 0, 2,
                 "needs n >= 3");
  expect_refused("trimmed-mean:3, mixed, over 6 workers refused",
                 LORA4J_AGG_TRIMMED_MEAN | LORA4J_AGG_MIX, 3, 6, "f < n/2");

  // What mixing is for: 5 honest workers spread around a common gradient g, and worker 2
  // sending -8 x its own gradient, the extreme value of nearly every coordinate on the side
  // opposite g. The plain rules then lean towards that side by a fraction of the honest spread in
  // every coordinate (a bias: measured as the mean over coordinates of (rule - g) x sign(g),
  // which the honest mean has at 0; 0.094 for the plain median here); with mixing the honest
  // mixtures leave the faulty worker out and lie close together, and the bias is far smaller
  // (0.0012).
  {
    const int n = 6;
    const int64_t m = 20000;
    Rows x(size_t(n) * size_t(m));
    std::vector<float> g(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) {
      g[size_t(j)] = rng.uniform(-1, 1);
      for (int i = 0; i < n; ++i) x[size_t(i * m + j)] = g[size_t(j)] + rng.uniform(-1, 1);
      x[size_t(2 * m + j)] *= -8.f;
    }
    auto bias = [&](int rule, int f) {
      Rows out = run(rule, f, n, m, x, nullptr, nullptr);
      double s = 0;
      for (int64_t j = 0; j < m; ++j)
        s += (double(out[size_t(j)]) - double(g[size_t(j)])) * (g[size_t(j)] < 0 ? -1.0 : 1.0);
      return s / double(m);
    };
    for (int rule : {LORA4J_AGG_MEDIAN, LORA4J_AGG_TRIMMED_MEAN, LORA4J_AGG_CENTERED_CLIP}) {
      const int f = rule == LORA4J_AGG_TRIMMED_MEAN ? 1 : 0;
      const double plain = bias(rule, f), mixed = bias(rule | LORA4J_AGG_MIX, f);
      check_true(std::string("one -8x worker of 6: mixing shrinks the bias of ") +
                     (rule == LORA4J_AGG_MEDIAN         ? "the median"
                      : rule == LORA4J_AGG_TRIMMED_MEAN ? "trimmed-mean:1"
                                                        : "centered-clip") +
                     " at least 10x",
                 plain < -0.03 && std::fabs(mixed) * 10 < -plain,
                 "bias " + std::to_string(mixed) + " mixed, " + std::to_string(plain) + " plain");
    }
  }

  engine_flat_buffer();
  return testutil::finish("test_aggregate");
}
