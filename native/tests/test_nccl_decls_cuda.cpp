// Our declarations of NCCL (src/cuda/nccl.h) against the real header: every constant, the
// unique id's layout and the signature of every function (pointers compared as pointers, enums
// as int, the unique id passed by value as our struct), all checked at compile time. Built only
// where nccl.h exists (the GPU machine); then, at run time, the loader opens the machine's
// libnccl.so.2, its version is printed and compared with the header's, and a unique id is made.
#include <nccl.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "cuda/nccl.h"

namespace nc = lora4j::cuda::nccl;

template <class T>
using Erase = std::conditional_t<
    std::is_same_v<T, ncclUniqueId>, nc::UniqueId,
    std::conditional_t<std::is_pointer_v<T>, void*, std::conditional_t<std::is_enum_v<T>, int, T>>>;
template <class F>
struct Sig;
template <class R, class... A>
struct Sig<R(A...)> {
  using type = Erase<R>(Erase<A>...);
};
template <class R, class... A>
struct Sig<R (*)(A...)> : Sig<R(A...)> {};

#define SAME_SIGNATURE(fn)                                                                   \
  static_assert(std::is_same_v<Sig<decltype(::fn)>::type, Sig<decltype(nc::Api::fn)>::type>, \
                #fn " differs from nccl.h")

SAME_SIGNATURE(ncclGetVersion);
SAME_SIGNATURE(ncclGetUniqueId);
SAME_SIGNATURE(ncclCommInitRank);
SAME_SIGNATURE(ncclCommDestroy);
SAME_SIGNATURE(ncclCommAbort);
SAME_SIGNATURE(ncclCommGetAsyncError);
SAME_SIGNATURE(ncclGetErrorString);
SAME_SIGNATURE(ncclGetLastError);
SAME_SIGNATURE(ncclAllReduce);
SAME_SIGNATURE(ncclAllGather);

// enums passed as int must be int-sized; the handle is a pointer
static_assert(sizeof(ncclResult_t) == sizeof(int));
static_assert(sizeof(ncclDataType_t) == sizeof(int));
static_assert(sizeof(ncclRedOp_t) == sizeof(int));
static_assert(std::is_pointer_v<ncclComm_t>);

static_assert(nc::kSuccess == ncclSuccess);
static_assert(nc::kUnhandledCudaError == ncclUnhandledCudaError);
static_assert(nc::kSystemError == ncclSystemError);
static_assert(nc::kInternalError == ncclInternalError);
static_assert(nc::kInvalidArgument == ncclInvalidArgument);
static_assert(nc::kInvalidUsage == ncclInvalidUsage);
static_assert(nc::kRemoteError == ncclRemoteError);
static_assert(nc::kInProgress == ncclInProgress);
static_assert(nc::kFloat32 == ncclFloat32);
static_assert(nc::kFloat64 == ncclFloat64);
static_assert(nc::kSum == ncclSum);

static_assert(nc::kUniqueIdBytes == NCCL_UNIQUE_ID_BYTES);
static_assert(sizeof(nc::UniqueId) == sizeof(ncclUniqueId));
static_assert(alignof(nc::UniqueId) == alignof(ncclUniqueId));
static_assert(offsetof(nc::UniqueId, internal) == offsetof(ncclUniqueId, internal));

int main() {
  const nc::Api& a = nc::api();
  int v = 0;
  if (a.ncclGetVersion(&v) != nc::kSuccess) {
    std::printf("[nccl] ncclGetVersion failed  FAIL\n");
    return 1;
  }
  nc::UniqueId id{};
  nc::Result r = a.ncclGetUniqueId(&id);
  nc::UniqueId zero{};
  bool made = r == nc::kSuccess && std::memcmp(&id, &zero, sizeof id) != 0;
  std::printf(
      "[nccl] declarations match nccl.h %d.%d.%d; loaded %s, version %d; unique id %s  %s\n",
      NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH, nc::loaded_path(), v,
      made ? "made" : a.ncclGetErrorString(r), made && v / 10000 == NCCL_MAJOR ? "PASS" : "FAIL");
  return made && v / 10000 == NCCL_MAJOR ? 0 : 1;
}
