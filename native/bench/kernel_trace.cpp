// Kernel trace without a profiler: a CUPTI injection library (liblora4j_kernel_trace.so) for
// machines that have the CUDA toolkit but no Nsight Systems. Loaded into any CUDA process with
//   CUDA_INJECTION64_PATH=/path/liblora4j_kernel_trace.so
// (the CUDA driver opens it at cuInit and calls InitializeInjection), it records the start, end,
// name and stream of every kernel, memcpy and memset the GPU runs, and at exit writes a report to
// the file named by LORA4J_KERNEL_TRACE_OUT (default: stderr):
//  - the timeline of all records (every stream and kind together) merged into busy intervals;
//    a gap between busy intervals longer than LORA4J_KERNEL_TRACE_PAUSE_US (default 2000 us) is
//    a host pause (setup, a synchronisation between timed phases) and splits the timeline into
//    segments; shorter gaps are the GPU idle inside a segment (launch gaps). Busy and idle time,
//    the idle share, a histogram of the gaps inside segments, and one line per segment longer than
//    50 ms (a training step of back-to-back kernels shows as one such line);
//  - the kernels summed by name (top 40 by total time), in the columns of scripts/gpu/run.sh's
//    Nsight Systems table.
// Any CUPTI error prints one line to stderr naming the call, and the tool then does nothing more:
// the traced process runs on as if it were not loaded.
// Building with -DKERNEL_TRACE_SELFTEST gives instead a program that checks the report's
// arithmetic on hand-made records (no CUDA needed):
//   g++ -std=c++17 -DKERNEL_TRACE_SELFTEST native/bench/kernel_trace.cpp -o kt_selftest
#include <cxxabi.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#ifndef KERNEL_TRACE_SELFTEST
#include <cupti.h>

#include <atomic>
#include <mutex>
#endif

namespace {

// ---- the report: plain functions of a vector of records (checked by the self-test) ----------

enum Kind : uint8_t { kKernel = 0, kMemcpy = 1, kMemset = 2 };

// One GPU activity, kept small (24 bytes): a process may launch a few hundred thousand kernels.
// Times are CUPTI's nanosecond timestamps; the name is an index into the interned names.
struct Record {
  uint64_t start;
  uint64_t end;
  uint32_t name;
  uint32_t stream : 24;  // CUPTI's stream id, saturated at 2^24 - 1
  uint32_t kind : 8;
};

// Gap histogram buckets (upper edges in ns); the last one reaches the pause threshold.
constexpr int kBuckets = 7;
constexpr uint64_t kBucketUpperNs[kBuckets - 1] = {1000, 2000, 5000, 10000, 50000, 200000};
const char* const kBucketLabel[kBuckets - 1] = {"<1", "1-2", "2-5", "5-10", "10-50", "50-200"};

int gap_bucket(uint64_t gap_ns) {
  for (int i = 0; i < kBuckets - 1; ++i)
    if (gap_ns < kBucketUpperNs[i]) return i;
  return kBuckets - 1;
}

// A stretch of the timeline with no gap longer than the pause threshold.
struct Segment {
  uint64_t start = 0, end = 0;  // first busy start, last busy end
  uint64_t busy_ns = 0;         // union of the records' intervals
  uint64_t kernels = 0;         // kernel records starting in it
  uint64_t idle_ns() const { return end - start - busy_ns; }
};

struct Timeline {
  uint64_t first = 0;     // start of the first record
  uint64_t busy_ns = 0;   // all segments
  uint64_t idle_ns = 0;   // gaps inside segments
  uint64_t pause_ns = 0;  // gaps between segments
  uint64_t gap_count[kBuckets] = {};
  uint64_t gap_total_ns[kBuckets] = {};
  std::vector<Segment> segments;
};

// Sorts the records by start, merges overlapping (or touching) intervals into busy intervals and
// splits the timeline at gaps longer than pause_ns.
Timeline analyze_timeline(std::vector<Record>& records, uint64_t pause_ns) {
  Timeline t;
  if (records.empty()) return t;
  std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) {
    return a.start != b.start ? a.start < b.start : a.end < b.end;
  });
  t.first = records.front().start;
  uint64_t busy_start = t.first, busy_end = t.first;  // the busy interval being built
  Segment seg;
  seg.start = t.first;
  for (const Record& r : records) {
    if (r.start > busy_end) {  // a gap: close the busy interval
      seg.busy_ns += busy_end - busy_start;
      uint64_t gap = r.start - busy_end;
      if (gap > pause_ns) {
        seg.end = busy_end;
        t.segments.push_back(seg);
        t.pause_ns += gap;
        seg = Segment();
        seg.start = r.start;
      } else {
        int b = gap_bucket(gap);
        t.gap_count[b] += 1;
        t.gap_total_ns[b] += gap;
        t.idle_ns += gap;
      }
      busy_start = r.start;
      busy_end = r.end;
    } else {
      busy_end = std::max(busy_end, r.end);
    }
    if (r.kind == kKernel) seg.kernels += 1;
  }
  seg.busy_ns += busy_end - busy_start;
  seg.end = busy_end;
  t.segments.push_back(seg);
  for (const Segment& s : t.segments) t.busy_ns += s.busy_ns;
  return t;
}

struct NameTotal {
  uint32_t name;
  uint64_t total_ns;
  uint64_t calls;
};

// The kernel records summed by name, largest total first.
std::vector<NameTotal> kernel_totals(const std::vector<Record>& records, size_t names) {
  std::vector<NameTotal> by_name(names);
  for (size_t i = 0; i < names; ++i) by_name[i] = {uint32_t(i), 0, 0};
  for (const Record& r : records) {
    if (r.kind != kKernel || r.name >= names) continue;
    by_name[r.name].total_ns += r.end - r.start;
    by_name[r.name].calls += 1;
  }
  std::vector<NameTotal> out;
  for (const NameTotal& n : by_name)
    if (n.calls) out.push_back(n);
  std::sort(out.begin(), out.end(), [](const NameTotal& a, const NameTotal& b) {
    return a.total_ns != b.total_ns ? a.total_ns > b.total_ns : a.name < b.name;
  });
  return out;
}

// A readable kernel name: demangled when it is a mangled C++ name, at most 110 characters.
std::string display_name(const std::string& name) {
  std::string out = name;
  if (name.size() > 2 && name[0] == '_' && name[1] == 'Z') {
    int st = 0;
    char* d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &st);
    if (st == 0 && d) out = d;
    std::free(d);
  }
  if (out.size() > 110) out.resize(110);
  return out;
}

// What the recorder counted besides the records themselves.
struct Counts {
  uint64_t dropped = 0;     // CUPTI had no buffer room for them
  uint64_t incomplete = 0;  // no end time yet at exit (still running), or end before start
  uint32_t devices = 0;     // distinct device ids seen
};

double ms(uint64_t ns) { return ns / 1e6; }
double pct(uint64_t part, uint64_t whole) { return whole ? 100.0 * part / whole : 0.0; }

constexpr uint64_t kLongSegmentNs = 50000000;  // segments listed one per line: > 50 ms
constexpr size_t kMaxSegmentLines = 200;
constexpr size_t kTopKernels = 40;

void write_report(FILE* out, std::vector<Record>& records, const std::deque<std::string>& names,
                  const Counts& counts, uint64_t pause_ns) {
  uint64_t n_kind[3] = {}, ns_kind[3] = {};
  std::vector<uint32_t> streams;
  for (const Record& r : records) {
    n_kind[r.kind] += 1;
    ns_kind[r.kind] += r.end - r.start;
    streams.push_back(r.stream);
  }
  std::sort(streams.begin(), streams.end());
  size_t n_streams = std::unique(streams.begin(), streams.end()) - streams.begin();
  std::fprintf(out,
               "kernel trace (CUPTI): %zu records: %" PRIu64 " kernels (%.2f ms), %" PRIu64
               " memcpy (%.2f ms), %" PRIu64 " memset (%.2f ms); %u device(s), %zu stream(s)\n",
               records.size(), n_kind[kKernel], ms(ns_kind[kKernel]), n_kind[kMemcpy],
               ms(ns_kind[kMemcpy]), n_kind[kMemset], ms(ns_kind[kMemset]), counts.devices,
               n_streams);
  if (counts.dropped || counts.incomplete)
    std::fprintf(out,
                 "records lost: %" PRIu64 " dropped by CUPTI, %" PRIu64 " incomplete at exit\n",
                 counts.dropped, counts.incomplete);
  if (counts.devices > 1)
    std::fprintf(out, "note: the timeline merges the records of all devices\n");
  if (records.empty()) {
    std::fprintf(out, "no GPU activity recorded\n");
    return;
  }
  Timeline t = analyze_timeline(records, pause_ns);
  std::fprintf(out,
               "timeline: all records, all streams merged; a gap over %.0f us is a host pause "
               "(LORA4J_KERNEL_TRACE_PAUSE_US)\n",
               pause_ns / 1e3);
  std::fprintf(out, "segments: %zu, first to last record %.2f ms, pauses between them %.2f ms\n",
               t.segments.size(), ms(t.segments.back().end - t.first), ms(t.pause_ns));
  std::fprintf(out, "all segments: busy %.2f ms, idle inside %.2f ms, idle share %.2f%%\n",
               ms(t.busy_ns), ms(t.idle_ns), pct(t.idle_ns, t.busy_ns + t.idle_ns));
  uint64_t long_n = 0, long_busy = 0, long_idle = 0;
  for (const Segment& s : t.segments)
    if (s.end - s.start > kLongSegmentNs) {
      long_n += 1;
      long_busy += s.busy_ns;
      long_idle += s.idle_ns();
    }
  if (long_n)
    std::fprintf(out,
                 "segments over 50 ms (%" PRIu64
                 "): busy %.2f ms, idle inside %.2f ms, idle share %.2f%%\n",
                 long_n, ms(long_busy), ms(long_idle), pct(long_idle, long_busy + long_idle));
  std::fprintf(out, "gaps inside segments:\n%10s %10s %12s\n", "gap us", "count", "total us");
  for (int b = 0; b < kBuckets; ++b) {
    char label[32];
    if (b < kBuckets - 1)
      std::snprintf(label, sizeof label, "%s", kBucketLabel[b]);
    else
      std::snprintf(label, sizeof label, "200-%.0f", pause_ns / 1e3);
    std::fprintf(out, "%10s %10" PRIu64 " %12.1f\n", label, t.gap_count[b],
                 t.gap_total_ns[b] / 1e3);
  }
  std::fprintf(out, "segments over 50 ms, one a line (start: ms after the first record):\n");
  std::fprintf(out, "%10s %10s %10s %10s %7s %8s\n", "start ms", "span ms", "busy ms", "idle ms",
               "idle", "kernels");
  size_t lines = 0;
  for (const Segment& s : t.segments) {
    if (s.end - s.start <= kLongSegmentNs) continue;
    if (++lines > kMaxSegmentLines) continue;
    std::fprintf(out, "%10.2f %10.2f %10.2f %10.2f %6.2f%% %8" PRIu64 "\n", ms(s.start - t.first),
                 ms(s.end - s.start), ms(s.busy_ns), ms(s.idle_ns()),
                 pct(s.idle_ns(), s.end - s.start), s.kernels);
  }
  if (lines > kMaxSegmentLines)
    std::fprintf(out, "(%zu more segments over 50 ms not listed)\n", lines - kMaxSegmentLines);

  std::vector<NameTotal> kernels = kernel_totals(records, names.size());
  uint64_t kernel_ns = 0;
  for (const NameTotal& k : kernels) kernel_ns += k.total_ns;
  std::fprintf(out, "\n%6s %10s %8s %10s  %s\n", "share", "total ms", "calls", "mean us", "kernel");
  for (size_t i = 0; i < kernels.size() && i < kTopKernels; ++i) {
    const NameTotal& k = kernels[i];
    char calls[24];
    std::snprintf(calls, sizeof calls, "%" PRIu64, k.calls);
    std::fprintf(out, "%5.1f%% %10.2f %8s %10.1f  %s\n", pct(k.total_ns, kernel_ns), ms(k.total_ns),
                 calls, k.total_ns / 1e3 / k.calls, display_name(names[k.name]).c_str());
  }
  if (kernels.size() > kTopKernels) {
    uint64_t rest = 0;
    for (size_t i = kTopKernels; i < kernels.size(); ++i) rest += kernels[i].total_ns;
    std::fprintf(out, "(%zu more kernel names: %.2f ms, %.1f%%)\n", kernels.size() - kTopKernels,
                 ms(rest), pct(rest, kernel_ns));
  }
}

// Names kept once each: ids index `names`; the map's keys view the stored strings (a deque keeps
// them in place), so looking a name up allocates nothing.
struct Names {
  std::deque<std::string> names;
  std::unordered_map<std::string_view, uint32_t> ids;
  uint32_t intern(std::string_view s) {
    auto it = ids.find(s);
    if (it != ids.end()) return it->second;
    names.emplace_back(s);
    uint32_t id = uint32_t(names.size() - 1);
    ids.emplace(std::string_view(names.back()), id);
    return id;
  }
};

}  // namespace

#ifndef KERNEL_TRACE_SELFTEST

// ---- the recorder: CUPTI activity buffers into Records ---------------------------------------

namespace {

// LORA4J_KERNEL_TRACE_PAUSE_US in ns (default 2000 us).
uint64_t pause_threshold_ns() {
  const char* v = std::getenv("LORA4J_KERNEL_TRACE_PAUSE_US");
  if (v && *v) {
    char* end = nullptr;
    double us = std::strtod(v, &end);
    if (end != v && us >= 0) return uint64_t(us * 1e3);
  }
  return 2000000;
}

constexpr size_t kBufferBytes = size_t(8) << 20;  // per activity buffer handed to CUPTI

struct Trace {
  std::mutex mu;
  std::vector<Record> records;
  Names names;
  Counts counts;
  std::vector<uint32_t> devices;
  bool done = false;  // the report is written: buffers coming later are only freed
};

// Never destroyed: CUPTI's thread may still hand buffers over while the process exits.
Trace& trace() {
  static Trace* t = new Trace();
  return *t;
}

std::atomic<bool> g_inert{false};  // set after a CUPTI error: record nothing, report nothing

// False, after one line on stderr naming the call and what follows, when a CUPTI call failed.
bool cupti_ok(CUptiResult r, const char* call, const char* then) {
  if (r == CUPTI_SUCCESS) return true;
  const char* msg = "unknown error";
  cuptiGetResultString(r, &msg);
  std::fprintf(stderr, "lora4j kernel trace: %s failed: %s; %s\n", call, msg, then);
  return false;
}

// What a failed setup call leads to: nothing is recorded or reported from then on.
constexpr const char* kOff = "tracing off";

const char* memcpy_name(uint8_t copy_kind) {
  switch (copy_kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return "[memcpy HtoD]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return "[memcpy DtoH]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return "[memcpy DtoD]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH:
      return "[memcpy HtoH]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP:
      return "[memcpy PtoP]";
    default:
      return "[memcpy other]";
  }
}

// Called with the trace's lock held.
void add_record(Trace& t, const CUpti_Activity* a) {
  uint64_t start, end;
  uint32_t stream, device;
  std::string_view name;
  Kind kind;
  switch (a->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
      // CUDA 13.0's kernel record (both kinds deliver it).
      auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(a);
      start = k->start;
      end = k->end;
      stream = k->streamId;
      device = k->deviceId;
      name = k->name ? k->name : "<unnamed kernel>";
      kind = kKernel;
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(a);
      start = m->start;
      end = m->end;
      stream = m->streamId;
      device = m->deviceId;
      name = memcpy_name(m->copyKind);
      kind = kMemcpy;
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(a);
      start = m->start;
      end = m->end;
      stream = m->streamId;
      device = m->deviceId;
      name = "[memset]";
      kind = kMemset;
      break;
    }
    default:
      return;
  }
  if (start == 0 || end < start) {  // a forced flush hands over records not finished yet
    t.counts.incomplete += 1;
    return;
  }
  if (std::find(t.devices.begin(), t.devices.end(), device) == t.devices.end()) {
    t.devices.push_back(device);
    t.counts.devices = uint32_t(t.devices.size());
  }
  Record r;
  r.start = start;
  r.end = end;
  r.name = t.names.intern(name);
  r.stream = std::min<uint32_t>(stream, (1u << 24) - 1);
  r.kind = kind;
  t.records.push_back(r);
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *max_records = 0;  // as many as fit
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;  // no buffer: CUPTI drops records and counts them
}

void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer, size_t /*size*/,
                               size_t valid) {
  if (!g_inert) {
    try {
      Trace& t = trace();
      std::lock_guard<std::mutex> lock(t.mu);
      if (!t.done) {
        CUpti_Activity* a = nullptr;
        while (cuptiActivityGetNextRecord(buffer, valid, &a) == CUPTI_SUCCESS) add_record(t, a);
        size_t dropped = 0;
        if (cuptiActivityGetNumDroppedRecords(context, stream, &dropped) == CUPTI_SUCCESS)
          t.counts.dropped += dropped;
      }
    } catch (...) {  // out of memory: keep what was recorded
    }
  }
  std::free(buffer);
}

// At exit: the records still in CUPTI's buffers (forced: kernels still running come back
// without an end time and are counted as incomplete), then the report.
void at_exit() {
  if (g_inert) return;
  try {
    // on failure the report still has what CUPTI handed over before
    cupti_ok(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll",
             "the report has the records delivered before");
    Trace& t = trace();
    std::vector<Record> records;
    Counts counts;
    {
      std::lock_guard<std::mutex> lock(t.mu);
      t.done = true;
      records.swap(t.records);
      counts = t.counts;
    }
    const char* path = std::getenv("LORA4J_KERNEL_TRACE_OUT");
    FILE* out = stderr;
    if (path && *path) {
      out = std::fopen(path, "w");
      if (!out) {
        std::fprintf(stderr, "lora4j kernel trace: cannot write %s; report on stderr\n", path);
        out = stderr;
      }
    }
    write_report(out, records, t.names.names, counts, pause_threshold_ns());
    if (out != stderr) std::fclose(out);
  } catch (...) {
    std::fprintf(stderr, "lora4j kernel trace: report failed (out of memory)\n");
  }
}

}  // namespace

// The CUDA driver calls this once, at cuInit, in a process started with CUDA_INJECTION64_PATH
// naming this library. It returns 1 whatever happens: a failure only leaves the tool inert.
extern "C" __attribute__((visibility("default"))) int InitializeInjection(void) {
  static std::atomic<bool> started{false};
  if (started.exchange(true)) return 1;
  trace();  // allocated here, not on CUPTI's thread
  if (!cupti_ok(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed),
                "cuptiActivityRegisterCallbacks", kOff)) {
    g_inert = true;
    return 1;
  }
  if (std::atexit(at_exit) != 0) {
    std::fprintf(stderr, "lora4j kernel trace: atexit failed; %s\n", kOff);
    g_inert = true;
    return 1;
  }
  const struct {
    CUpti_ActivityKind kind;
    const char* call;
  } kinds[] = {
      {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, "cuptiActivityEnable(CONCURRENT_KERNEL)"},
      {CUPTI_ACTIVITY_KIND_MEMCPY, "cuptiActivityEnable(MEMCPY)"},
      {CUPTI_ACTIVITY_KIND_MEMSET, "cuptiActivityEnable(MEMSET)"},
  };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) {
    if (!cupti_ok(cuptiActivityEnable(kinds[i].kind), kinds[i].call, kOff)) {
      g_inert = true;
      for (size_t j = 0; j < i; ++j) cuptiActivityDisable(kinds[j].kind);
      return 1;
    }
  }
  return 1;
}

#else  // KERNEL_TRACE_SELFTEST

// ---- self-test: the report's arithmetic on hand-made records ----------------------------------

namespace {

int failures = 0;

#define CHECK_EQ(a, b)                                                                        \
  do {                                                                                        \
    unsigned long long a_ = (a), b_ = (b);                                                    \
    if (a_ != b_) {                                                                           \
      std::printf("FAIL line %d: %s = %llu, expected %s = %llu\n", __LINE__, #a, a_, #b, b_); \
      ++failures;                                                                             \
    }                                                                                         \
  } while (0)

Record rec(uint64_t start, uint64_t end, uint32_t name, uint32_t stream, Kind kind) {
  Record r;
  r.start = start;
  r.end = end;
  r.name = name;
  r.stream = stream;
  r.kind = kind;
  return r;
}

void test_timeline() {
  Names n;
  uint32_t a = n.intern("_Z7kernelAPf"), b = n.intern("kernelB"), cpy = n.intern("[memcpy HtoD]"),
           set = n.intern("[memset]");
  CHECK_EQ(n.intern("kernelB"), b);  // interned once
  std::vector<Record> r = {
      // segment 1: two streams overlapping, then one gap in each bucket
      rec(0, 10000, a, 1, kKernel), rec(5000, 20000, b, 2, kKernel),  // overlaps: busy [0, 20000]
      rec(20500, 30500, a, 1, kKernel),                               // gap 0.5 us
      rec(32000, 42000, a, 1, kKernel),                               // gap 1.5 us
      rec(45000, 55000, a, 1, kKernel),                               // gap 3 us
      rec(62000, 72000, cpy, 1, kMemcpy),                             // gap 7 us
      rec(92000, 102000, a, 1, kKernel),                              // gap 20 us
      rec(202000, 212000, set, 1, kMemset),                           // gap 100 us
      rec(1212000, 1222000, b, 1, kKernel),                           // gap 1000 us
      rec(1213000, 1214000, a, 2, kKernel),                           // inside the one before
      rec(1222000, 1230000, a, 1, kKernel),  // touches the one before: no gap
      // a host pause of 5000 us, then segment 2 with a gap of exactly the threshold
      rec(6230000, 6240000, b, 1, kKernel),
      rec(8240000, 8250000, b, 1, kKernel),  // gap 2000 us: not over, so not a pause
  };
  std::reverse(r.begin(), r.end());  // any order in
  Timeline t = analyze_timeline(r, 2000000);
  CHECK_EQ(t.segments.size(), 2);
  CHECK_EQ(t.first, 0);
  CHECK_EQ(t.segments[0].busy_ns, 20000 + 6 * 10000 + 18000);
  CHECK_EQ(t.segments[0].idle_ns(), 500 + 1500 + 3000 + 7000 + 20000 + 100000 + 1000000);
  CHECK_EQ(t.segments[0].kernels, 9);
  CHECK_EQ(t.segments[0].end, 1230000);
  CHECK_EQ(t.segments[1].start, 6230000);
  CHECK_EQ(t.segments[1].busy_ns, 20000);
  CHECK_EQ(t.segments[1].idle_ns(), 2000000);
  CHECK_EQ(t.segments[1].kernels, 2);
  CHECK_EQ(t.busy_ns, 98000 + 20000);
  CHECK_EQ(t.idle_ns, 1132000 + 2000000);
  CHECK_EQ(t.pause_ns, 5000000);
  const uint64_t counts[kBuckets] = {1, 1, 1, 1, 1, 1, 2};
  const uint64_t totals[kBuckets] = {500, 1500, 3000, 7000, 20000, 100000, 3000000};
  for (int i = 0; i < kBuckets; ++i) {
    CHECK_EQ(t.gap_count[i], counts[i]);
    CHECK_EQ(t.gap_total_ns[i], totals[i]);
  }
  // a lower threshold: the 1000 us and 2000 us gaps become pauses too
  Timeline t2 = analyze_timeline(r, 500000);
  CHECK_EQ(t2.segments.size(), 4);
  CHECK_EQ(t2.idle_ns, 132000);
  CHECK_EQ(t2.busy_ns, t.busy_ns);

  std::vector<NameTotal> k = kernel_totals(r, n.names.size());
  CHECK_EQ(k.size(), 2);  // memcpy and memset are not kernels
  CHECK_EQ(k[0].name, a);
  CHECK_EQ(k[0].calls, 7);
  CHECK_EQ(k[0].total_ns, 10000 + 4 * 10000 + 1000 + 8000);
  CHECK_EQ(k[1].name, b);
  CHECK_EQ(k[1].calls, 4);
  CHECK_EQ(k[1].total_ns, 15000 + 10000 + 2 * 10000);
}

void test_edges() {
  std::vector<Record> none;
  Timeline t = analyze_timeline(none, 2000000);
  CHECK_EQ(t.segments.size(), 0);
  std::vector<Record> one = {rec(100, 300, 0, 0, kKernel)};
  t = analyze_timeline(one, 2000000);
  CHECK_EQ(t.segments.size(), 1);
  CHECK_EQ(t.busy_ns, 200);
  CHECK_EQ(t.idle_ns, 0);
  CHECK_EQ(gap_bucket(999), 0);
  CHECK_EQ(gap_bucket(1000), 1);
  CHECK_EQ(gap_bucket(199999), 5);
  CHECK_EQ(gap_bucket(200000), 6);
  CHECK_EQ(display_name("_Z3fooi") == "foo(int)", 1);
  CHECK_EQ(display_name("plain_name") == "plain_name", 1);
  CHECK_EQ(display_name(std::string(300, 'x')).size(), 110);
}

// The report on a 60 ms segment of 600 kernels with 1 us gaps, then a pause and a short one.
void test_report() {
  Names n;
  uint32_t a = n.intern("_Z4stepv");
  std::vector<Record> r;
  for (int i = 0; i < 600; ++i)
    r.push_back(rec(i * 100000ull, i * 100000ull + 99000, a, 7, kKernel));
  r.push_back(rec(80000000, 80001000, n.intern("[memset]"), 7, kMemset));
  FILE* f = std::tmpfile();
  Counts c;
  c.devices = 1;
  write_report(f, r, n.names, c, 2000000);
  std::rewind(f);
  std::string text;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f)) text += buf;
  std::fclose(f);
  std::printf("---- report on the hand-made records:\n%s----\n", text.c_str());
  CHECK_EQ(text.find("601 records: 600 kernels") != std::string::npos, 1);
  CHECK_EQ(text.find("segments: 2,") != std::string::npos, 1);
  CHECK_EQ(text.find("idle inside 0.60 ms") != std::string::npos, 1);
  CHECK_EQ(text.find("       1-2        599        599.0") != std::string::npos, 1);
  CHECK_EQ(text.find("      0.00      60.00      59.40       0.60   1.00%      600") !=
               std::string::npos,
           1);
  CHECK_EQ(text.find("100.0%      59.40      600       99.0  step()") != std::string::npos, 1);
}

}  // namespace

int main() {
  test_timeline();
  test_edges();
  test_report();
  if (failures) {
    std::printf("kernel_trace self-test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("kernel_trace self-test: all checks passed\n");
  return 0;
}

#endif  // KERNEL_TRACE_SELFTEST
