// NVML through dlopen (the driver's libnvidia-ml.so.1), for the benchmarks that report the
// board's energy beside their times: the card runs its tensor-core work at its power cap, so an
// op's cost to a training step is its energy as much as its time. Only what they sample; every
// reading is NaN / 0 when the library or the device is not there.
#pragma once

#include <dlfcn.h>

#include <cmath>

namespace lora4j::bench {

struct Nvml {
  using Dev = void*;
  int (*init)() = nullptr;
  int (*by_pci)(const char*, Dev*) = nullptr;
  int (*count)(unsigned int*) = nullptr;
  int (*by_index)(unsigned int, Dev*) = nullptr;
  int (*energy)(Dev, unsigned long long*) = nullptr;   // mJ since the driver loaded
  int (*clock)(Dev, int, unsigned int*) = nullptr;     // MHz; type 1 = SM
  int (*reasons)(Dev, unsigned long long*) = nullptr;  // clock-limit reasons (bit mask)
  Dev dev = nullptr;
  bool ok = false;
  // The device on PCI bus `bus` (as cudaDeviceGetPCIBusId writes it), or with bus null the
  // machine's only one (not ok when NVML sees several: which one CUDA runs on is then unknown).
  explicit Nvml(const char* bus) {
    void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    init = reinterpret_cast<int (*)()>(dlsym(h, "nvmlInit_v2"));
    by_pci =
        reinterpret_cast<int (*)(const char*, Dev*)>(dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2"));
    count = reinterpret_cast<int (*)(unsigned int*)>(dlsym(h, "nvmlDeviceGetCount_v2"));
    by_index =
        reinterpret_cast<int (*)(unsigned int, Dev*)>(dlsym(h, "nvmlDeviceGetHandleByIndex_v2"));
    energy = reinterpret_cast<int (*)(Dev, unsigned long long*)>(
        dlsym(h, "nvmlDeviceGetTotalEnergyConsumption"));
    clock = reinterpret_cast<int (*)(Dev, int, unsigned int*)>(dlsym(h, "nvmlDeviceGetClockInfo"));
    void* r = dlsym(h, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!r) r = dlsym(h, "nvmlDeviceGetCurrentClocksThrottleReasons");
    reasons = reinterpret_cast<int (*)(Dev, unsigned long long*)>(r);
    if (!(init && by_pci && count && by_index && energy && clock && reasons) || init() != 0) return;
    unsigned int n = 0;
    if (bus)
      ok = by_pci(bus, &dev) == 0;
    else
      ok = count(&n) == 0 && n == 1 && by_index(0, &dev) == 0;
  }
  double energy_j() const {
    unsigned long long mj = 0;
    return ok && energy(dev, &mj) == 0 ? double(mj) * 1e-3 : NAN;
  }
  double sm_mhz() const {
    unsigned int m = 0;
    return ok && clock(dev, 1, &m) == 0 ? double(m) : NAN;
  }
  unsigned long long limit_reasons() const {
    unsigned long long r = 0;
    return ok && reasons(dev, &r) == 0 ? r : 0;
  }
};

}  // namespace lora4j::bench
