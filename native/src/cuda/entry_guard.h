// The C entry points of liblora4j_cuda (cuda_entry.h) report failures as a status code and a
// message copied into the caller's buffer, since no C++ exception may cross the dlsym boundary.
#pragma once
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "lora4j.h"
#include "model/engine.h"

namespace lora4j {
namespace cuda {

// Copies msg into err (cap bytes), truncated and terminated; does nothing if err is null or
// cap <= 0.
inline void copy_error(char* err, int cap, const std::string& msg) {
  if (!err || cap <= 0) return;
  std::strncpy(err, msg.c_str(), size_t(cap) - 1);
  err[cap - 1] = 0;
}

// Returns what make() returns with *code = 0, or null with *code and err set from what it
// threw: a lora4j::Error keeps its code and message, std::bad_alloc is LORA4J_ENOMEM, any
// other std::exception LORA4J_EINTERNAL.
template <class Make>
auto create_or_error(int* code, char* err, int err_cap, Make&& make) -> decltype(make()) {
  try {
    auto made = make();
    *code = 0;
    return made;
  } catch (const Error& e) {
    *code = e.code();
    copy_error(err, err_cap, e.what());
  } catch (const std::bad_alloc&) {
    *code = LORA4J_ENOMEM;
    copy_error(err, err_cap, "out of host memory");
  } catch (const std::exception& e) {
    *code = LORA4J_EINTERNAL;
    copy_error(err, err_cap, std::string("internal error: ") + e.what());
  }
  return nullptr;
}

}  // namespace cuda
}  // namespace lora4j
