// Turning whatever a body throws into a lora4j status code and a message: the one place every C
// entry point (lora4j.h, lora4j_bench.h, the backend tables) catches, since no C++ exception may
// cross a C boundary; and the null checks of their pointer arguments.
#pragma once

#include <new>
#include <stdexcept>
#include <string>

#include "model/engine.h"

namespace lora4j {

// Runs body; returns LORA4J_OK, or the status of what it threw with *message set to prefix +
// its text (a lora4j::Error keeps its code; std::bad_alloc is LORA4J_ENOMEM; anything else is
// LORA4J_EINTERNAL, its text after `internal`).
template <class F>
int run_status(std::string* message, const std::string& prefix, const char* internal,
               F&& body) noexcept {
  try {
    body();
    return LORA4J_OK;
  } catch (const Error& e) {
    *message = prefix + e.what();
    return e.code();
  } catch (const std::bad_alloc&) {
    *message = prefix + "out of host memory";
    return LORA4J_ENOMEM;
  } catch (const std::exception& e) {
    *message = prefix + internal + e.what();
    return LORA4J_EINTERNAL;
  } catch (...) {
    *message = prefix + internal + "unknown exception";
    return LORA4J_EINTERNAL;
  }
}

// The argument checks every C entry point makes of its pointers: a null one is LORA4J_EINVAL
// naming the argument.
inline std::string str(const char* s, const char* what) {
  if (s == nullptr) fail(LORA4J_EINVAL, std::string(what) + " is null");
  return std::string(s);
}
template <class T>
T* nonnull(T* p, const char* what) {
  if (p == nullptr) fail(LORA4J_EINVAL, std::string(what) + " is null");
  return p;
}

}  // namespace lora4j
