// Robust aggregation on the device (cuda/kernels/aggregate.cu) against the host rules
// (lora4j_aggregate, themselves checked against direct references by test_aggregate) on fresh
// random inputs: continuous values, ties (a few levels, signed zeros included), duplicate
// workers, f at its bound, NaN and infinite workers, more coordinates than one chunk, n up to
// LORA4J_MAX_WORKERS. The mean, median and trimmed mean must be the same bits; Krum must choose
// the same worker (and copy it exactly); centered clipping must agree to 1e-6, a few fp32 roundings
// (the sums over coordinates are taken in another order inside each chunk, so an element can round
// the other way; 2.1e-8 measured on an H200); both sides must set aside the same non-finite workers
// and refuse the same settings (more of them than the rule tolerates). The same with
// nearest-neighbour mixing first (LORA4J_AGG_MIX; mixtures the same bits, so the mixed median and
// trimmed mean too). Then the engine path on a
// CUDA engine: lora4j_workers_write / gather / read / aggregate against the same rule on the CPU
// engine, with and without a NaN worker, and refusals. Runs on the GPU machine; skips elsewhere
// unless LORA4J_REQUIRE_GPU=1.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cuda/kernels/aggregate.h"
#include "cuda_test_util.h"
#include "lora4j.h"
#include "model_config.h"

namespace {

const char* kSuite = "aggregate";
using Rows = std::vector<float>;

bool bitwise(const Rows& a, const Rows& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;  // NaN payloads are not specified
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  }
  return true;
}

// ||a - b|| / ||b|| over the coordinates where b is finite; non-finite ones must match in kind.
double rel_err_finite(const Rows& a, const Rows& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(b[i])) {
      if (std::isnan(b[i]) ? !std::isnan(a[i]) : a[i] != b[i]) return NAN;
      continue;
    }
    double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

struct Result {
  Rows out;
  int32_t selected = -1;
  int32_t nonfinite = -1;  // the workers the device set aside (-1: the host, which does not say)
  bool refused = false;    // too many non-finite workers for the rule (LORA4J_EFAULTY)
};

// Direct statement of the tolerance for d non-finite workers (lora4j.h): trimmed-mean:f and
// krum:f refuse d > f, median and centered-clip refuse 2d >= n, the mean never refuses.
bool refuses(int rule, int f, int n, int d) {
  rule &= ~LORA4J_AGG_MIX;  // mixing runs on the finite workers; the rule's tolerance applies
  if (rule == LORA4J_AGG_MEAN) return false;
  if (rule == LORA4J_AGG_TRIMMED_MEAN || rule == LORA4J_AGG_KRUM) return d > f;
  return 2 * d >= n;
}

Result host_rule(int rule, int f, int n, int64_t m, const Rows& x, const float* w) {
  Result r;
  r.out.assign(size_t(m), -7.f);
  const int rc = lora4j_aggregate(rule, f, n, m, x.data(), w, r.out.data(), &r.selected);
  if (rc == LORA4J_EFAULTY) {
    r.refused = true;
  } else if (rc != LORA4J_OK) {
    std::printf("lora4j_aggregate failed: %s\n", lora4j_last_error());
    std::exit(2);
  }
  return r;
}

Result device_rule(int rule, int f, int n, int64_t m, const ct::Dev<float>& rows, const float* w) {
  ct::Dev<float> out{size_t(m)};
  out.poison();
  size_t ws = lora4j::cuda::aggregate_workspace_bytes(rule, n, m);
  ct::Dev<char> work{ws};
  Result r;
  CT_CUDA(lora4j::cuda::aggregate_rows(rule, f, n, m, rows.p, w, out.p, ws ? work.p : nullptr,
                                       &r.selected, &r.nonfinite, nullptr));
  CT_CUDA(cudaDeviceSynchronize());
  r.out = ct::down(out);
  r.refused = refuses(rule, f, n, r.nonfinite);
  return r;
}

// n workers of m values: continuous, or a few levels with signed zeros (ties); optionally a
// duplicate row, a NaN row, an infinite row and a row scaled by -100.
Rows make_rows(ct::Rng& rng, int n, int64_t m, bool levels, bool dup, bool faulty) {
  Rows x(size_t(n) * size_t(m));
  for (float& v : x) {
    if (levels) {
      int k = rng.integer(0, 5);
      v = k == 0 ? -0.f : (k == 1 ? 0.f : float(k - 3) * 0.5f);
    } else {
      v = rng.uniform(-1.f, 1.f);
    }
  }
  if (dup && n >= 3) std::copy(x.begin(), x.begin() + m, x.begin() + 2 * m);
  if (faulty && n >= 5) {
    for (int64_t j = 0; j < m; ++j) x[size_t(1 * m + j)] = std::numeric_limits<float>::quiet_NaN();
    for (int64_t j = 0; j < m; ++j) x[size_t(3 * m + j)] = std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < m; ++j) x[size_t(4 * m + j)] *= -100.f;
  }
  return x;
}

void compare_rules(ct::Rng& rng, int n, int64_t m, bool levels, bool dup, bool faulty) {
  Rows x = make_rows(rng, n, m, levels, dup, faulty);
  ct::Dev<float> rows(x.size());
  ct::up(rows, x);
  const std::string tag = " n=" + std::to_string(n) + " m=" + std::to_string(m) +
                          (levels ? " ties" : "") + (dup ? " dup" : "") +
                          (faulty ? " nan/inf/-100x" : "");
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = float(rng.integer(1, 50));
  if (!faulty) {  // the mean of non-finite workers is not finite on either side
    ct::report_bool(kSuite, "mean (token weights)" + tag,
                    bitwise(device_rule(LORA4J_AGG_MEAN, 0, n, m, rows, w.data()).out,
                            host_rule(LORA4J_AGG_MEAN, 0, n, m, x, w.data()).out),
                    "bitwise");
    ct::report_bool(kSuite, "mean (equal weights)" + tag,
                    bitwise(device_rule(LORA4J_AGG_MEAN, 0, n, m, rows, nullptr).out,
                            host_rule(LORA4J_AGG_MEAN, 0, n, m, x, nullptr).out),
                    "bitwise");
  }
  // The same non-finite workers set aside, the same refusals, then the same bits.
  const int32_t bad = faulty && n >= 5 ? 2 : 0;  // the NaN and the infinite worker
  // a robust rule that did not refuse sets the non-finite workers aside: its output is finite
  // (so a device output left at its NaN poison cannot match a NaN of the host's)
  auto finite = [](const Rows& r) {
    return !r.empty() && std::all_of(r.begin(), r.end(), [](float v) { return std::isfinite(v); });
  };
  auto same = [&](const Result& d, const Result& h, bool exact) {
    if (d.nonfinite != bad || d.refused != h.refused) return false;
    if (h.refused) return true;
    if (!finite(h.out) || !finite(d.out)) return false;
    return exact ? d.selected == h.selected && bitwise(d.out, h.out) : true;
  };
  auto detail = [](const Result& d, const Result& h) {
    return "set aside " + std::to_string(d.nonfinite) + ", refused " + std::to_string(d.refused) +
           "/" + std::to_string(h.refused) + ", selected " + std::to_string(d.selected) + "/" +
           std::to_string(h.selected);
  };
  {
    Result d = device_rule(LORA4J_AGG_MEDIAN, 0, n, m, rows, nullptr);
    Result h = host_rule(LORA4J_AGG_MEDIAN, 0, n, m, x, nullptr);
    ct::report_bool(kSuite, "median" + tag, same(d, h, true), "bitwise; " + detail(d, h));
  }
  for (int f = 0; 2 * f < n; f += (f + 1 < (n - 1) / 2 ? std::max(1, n / 8) : 1)) {
    Result d = device_rule(LORA4J_AGG_TRIMMED_MEAN, f, n, m, rows, nullptr);
    Result h = host_rule(LORA4J_AGG_TRIMMED_MEAN, f, n, m, x, nullptr);
    ct::report_bool(kSuite, "trimmed-mean:" + std::to_string(f) + tag, same(d, h, true),
                    "bitwise; " + detail(d, h));
  }
  // Krum: f = 0, 1 and at its bound. Continuous inputs only: with levels, several workers can
  // tie in score up to rounding, and the choice among them is not defined beyond the host's
  // order of sums.
  if (!levels) {
    for (int f : {0, 1, (n - 3) / 2}) {
      if (f < 0 || n <= 2 * f + 2) continue;
      Result d = device_rule(LORA4J_AGG_KRUM, f, n, m, rows, nullptr);
      Result h = host_rule(LORA4J_AGG_KRUM, f, n, m, x, nullptr);
      ct::report_bool(kSuite, "krum:" + std::to_string(f) + tag, same(d, h, true), detail(d, h));
    }
  }
  // Nearest-neighbour mixing first: the same neighbours from the pair distances (summed in
  // another order inside a chunk: the inputs have no near-ties, and the levels' sums are exact),
  // then the same mixtures and the same bits.
  {
    const int rule = LORA4J_AGG_MEDIAN | LORA4J_AGG_MIX;
    Result d = device_rule(rule, 0, n, m, rows, nullptr);
    Result h = host_rule(rule, 0, n, m, x, nullptr);
    ct::report_bool(kSuite, "median, mixed" + tag, same(d, h, true), "bitwise; " + detail(d, h));
  }
  for (int f : {0, 1, (n - 1) / 2}) {
    if (2 * f >= n) continue;
    const int rule = LORA4J_AGG_TRIMMED_MEAN | LORA4J_AGG_MIX;
    Result d = device_rule(rule, f, n, m, rows, nullptr);
    Result h = host_rule(rule, f, n, m, x, nullptr);
    ct::report_bool(kSuite, "trimmed-mean:" + std::to_string(f) + ", mixed" + tag, same(d, h, true),
                    "bitwise; " + detail(d, h));
  }
  {
    const int rule = LORA4J_AGG_CENTERED_CLIP | LORA4J_AGG_MIX;
    Result d = device_rule(rule, 0, n, m, rows, nullptr);
    Result h = host_rule(rule, 0, n, m, x, nullptr);
    ct::report_bool(kSuite, "centered-clip, mixed, set aside / refused" + tag, same(d, h, false),
                    detail(d, h));
    if (!h.refused)
      ct::report(kSuite, "centered-clip, mixed" + tag, rel_err_finite(d.out, h.out), 1e-6);
  }
  Result dc = device_rule(LORA4J_AGG_CENTERED_CLIP, 0, n, m, rows, nullptr);
  Result hc = host_rule(LORA4J_AGG_CENTERED_CLIP, 0, n, m, x, nullptr);
  ct::report_bool(kSuite, "centered-clip set aside / refused" + tag, same(dc, hc, false),
                  detail(dc, hc));
  if (!hc.refused) {
    ct::report(kSuite, "centered-clip" + tag, rel_err_finite(dc.out, hc.out), 1e-6);
    ct::report_bool(
        kSuite, "centered-clip deterministic" + tag,
        bitwise(dc.out, device_rule(LORA4J_AGG_CENTERED_CLIP, 0, n, m, rows, nullptr).out),
        "two runs");
  }
}

lora4j_engine* make_engine(int device, int64_t* numel) {
  lora4j_model_config c = testutil::tiny_config();
  lora4j_engine_options o{};
  o.device = device;
  o.num_threads = 2;
  lora4j_engine* e = nullptr;
  if (lora4j_engine_create(&c, &o, &e) != LORA4J_OK) {
    if (device >= 0) ct::skip(std::string("no CUDA engine: ") + lora4j_last_error());
    std::printf("engine create failed: %s\n", lora4j_last_error());
    std::exit(2);
  }
  int32_t count = 0;
  lora4j_weight_count(&c, &count);
  ct::Rng rng(11);
  for (int32_t i = 0; i < count; ++i) {
    char name[256];
    int32_t ndim = 0, layer = 0, slot = 0;
    int64_t shape[2] = {1, 1};
    lora4j_weight_info(&c, i, name, sizeof name, &ndim, shape, &layer, &slot);
    std::vector<float> w(size_t(shape[0] * (ndim == 2 ? shape[1] : 1)));
    for (float& v : w) v = ndim == 1 ? 1.f : rng.uniform(-0.2f, 0.2f);
    lora4j_engine_set_weight(e, name, LORA4J_DTYPE_F32, w.data(), int64_t(w.size()));
  }
  lora4j_lora_attach(e, 4, 2.f, 0x7fu);
  lora4j_grad_flat_numel(e, numel);
  return e;
}

// The engine path: rows written from the host, one gathered from the arena, aggregated into the
// arena; the CUDA engine against the CPU engine, rule by rule.
void engine_path(ct::Rng& rng) {
  int64_t numel = 0, numel_cpu = 0;
  lora4j_engine* g = make_engine(0, &numel);
  lora4j_engine* c = make_engine(LORA4J_DEVICE_CPU, &numel_cpu);
  if (numel != numel_cpu) {
    ct::report_bool(kSuite, "engine: the same adapter size", false, "");
    return;
  }
  const int n = 7;
  Rows x = make_rows(rng, n, numel, false, false, false);
  Rows own(static_cast<size_t>(numel));
  for (float& v : own) v = rng.uniform(-1.f, 1.f);
  for (lora4j_engine* e : {g, c}) {
    lora4j_workers_reserve(e, n);
    lora4j_workers_write(e, 0, n - 1, x.data());
    lora4j_grad_set_flat(e, own.data(), numel);
    if (lora4j_workers_gather(e, n - 1) != LORA4J_OK)
      ct::report_bool(kSuite, "engine: gather", false, lora4j_last_error());
  }
  std::copy(own.begin(), own.end(), x.begin() + (n - 1) * numel);
  Rows back(x.size());
  lora4j_workers_read(g, 0, n, back.data());
  ct::report_bool(kSuite, "engine: write + gather + read round-trip", bitwise(back, x), "bitwise");
  const int rules[] = {LORA4J_AGG_MEAN,
                       LORA4J_AGG_MEDIAN,
                       LORA4J_AGG_TRIMMED_MEAN,
                       LORA4J_AGG_KRUM,
                       LORA4J_AGG_CENTERED_CLIP,
                       LORA4J_AGG_MEDIAN | LORA4J_AGG_MIX,
                       LORA4J_AGG_TRIMMED_MEAN | LORA4J_AGG_MIX,
                       LORA4J_AGG_CENTERED_CLIP | LORA4J_AGG_MIX};
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = float(rng.integer(1, 9));
  for (int rule : rules) {
    const int base = rule & ~LORA4J_AGG_MIX;
    const int f = base == LORA4J_AGG_KRUM ? 2 : (base == LORA4J_AGG_TRIMMED_MEAN ? 3 : 0);
    Rows out_g(static_cast<size_t>(numel)), out_c(static_cast<size_t>(numel));
    int32_t sel_g = -2, sel_c = -2;
    const float* wp = rule == LORA4J_AGG_MEAN ? w.data() : nullptr;
    int rc = lora4j_workers_aggregate(g, rule, f, n, wp, &sel_g);
    lora4j_workers_aggregate(c, rule, f, n, wp, &sel_c);
    lora4j_grad_get_flat(g, out_g.data(), numel);
    lora4j_grad_get_flat(c, out_c.data(), numel);
    const std::string name = "engine: rule " + std::to_string(rule) + " cuda vs cpu";
    if (base == LORA4J_AGG_CENTERED_CLIP) {
      ct::report(kSuite, name, rc == LORA4J_OK ? rel_err_finite(out_g, out_c) : NAN, 1e-6);
    } else {
      ct::report_bool(kSuite, name, rc == LORA4J_OK && sel_g == sel_c && bitwise(out_g, out_c),
                      "selected " + std::to_string(sel_g) + "/" + std::to_string(sel_c));
    }
  }
  // A NaN worker: set aside on both engines (the same bits), and refused by trimmed-mean:0.
  Rows nan_row(static_cast<size_t>(numel), std::numeric_limits<float>::quiet_NaN());
  for (lora4j_engine* e : {g, c}) lora4j_workers_write(e, 2, 1, nan_row.data());
  {
    Rows out_g(static_cast<size_t>(numel)), out_c(static_cast<size_t>(numel));
    int rg = lora4j_workers_aggregate(g, LORA4J_AGG_MEDIAN, 0, n, nullptr, nullptr);
    int rcpu = lora4j_workers_aggregate(c, LORA4J_AGG_MEDIAN, 0, n, nullptr, nullptr);
    lora4j_grad_get_flat(g, out_g.data(), numel);
    lora4j_grad_get_flat(c, out_c.data(), numel);
    bool finite = true;
    for (float v : out_g) finite = finite && std::isfinite(v);
    ct::report_bool(kSuite, "engine: median with a NaN worker, cuda vs cpu",
                    rg == LORA4J_OK && rcpu == LORA4J_OK && finite && bitwise(out_g, out_c),
                    "finite and bitwise");
  }
  int rc = lora4j_workers_aggregate(g, LORA4J_AGG_TRIMMED_MEAN, 0, n, nullptr, nullptr);
  ct::report_bool(kSuite, "engine: trimmed-mean:0 with a NaN worker refused",
                  rc == LORA4J_EFAULTY &&
                      std::string(lora4j_last_error()).find("1 of 7 workers") != std::string::npos,
                  lora4j_last_error());
  // refusals: rows beyond the reserved ones, a rule outside its tolerance, too many workers
  rc = lora4j_workers_aggregate(g, LORA4J_AGG_MEDIAN, 0, n + 1, nullptr, nullptr);
  ct::report_bool(
      kSuite, "engine: aggregate over unreserved rows refused",
      rc == LORA4J_EINVAL && std::string(lora4j_last_error()).find("reserved") != std::string::npos,
      lora4j_last_error());
  rc = lora4j_workers_aggregate(g, LORA4J_AGG_KRUM, 3, n, nullptr, nullptr);
  ct::report_bool(kSuite, "engine: krum:3 over 7 workers refused",
                  rc == LORA4J_EINVAL &&
                      std::string(lora4j_last_error()).find("n > 2f + 2") != std::string::npos,
                  lora4j_last_error());
  rc = lora4j_workers_reserve(g, LORA4J_MAX_WORKERS + 1);
  ct::report_bool(kSuite, "engine: more than LORA4J_MAX_WORKERS rows refused", rc == LORA4J_EINVAL,
                  lora4j_last_error());
  lora4j_engine_destroy(g);
  lora4j_engine_destroy(c);
}

}  // namespace

int main() {
  ct::skip_without_gpu();
  ct::Rng rng(20240);
  for (int n : {3, 4, 5, 6, 7, 8, 12, 33, 64}) {
    const int64_t m = n == 8 ? 70001 : (n >= 33 ? 4099 : 257);  // n = 8: more than two chunks
    for (int variant = 0; variant < 4; ++variant) {
      compare_rules(rng, n, m, variant == 1 || variant == 2, variant == 2, variant == 3);
    }
  }
  engine_path(rng);
  if (ct::failures() == 0) {
    std::printf("test_aggregate_cuda: all checks passed\n");
    return 0;
  }
  std::printf("test_aggregate_cuda: %d check(s) FAILED\n", ct::failures());
  return 1;
}
