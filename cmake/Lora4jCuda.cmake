# The CUDA backend, liblora4j_cuda: built wherever nvcc is (CI included). It links only the
# static CUDA runtime; cuBLASLt is opened at run time (src/cuda/cublaslt.h), so no cuBLAS is
# needed to build it and the jar carries it everywhere.
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "lora4j: no CUDA compiler found; CUDA backend not built")
  return()
endif()
# A100 (sm_80) and H100/H200 (sm_90) unless the caller names others; set before the language is
# enabled, which would otherwise pick the compiler's default (sm_75 for nvcc 13).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)

file(GLOB CUDA_KERNEL_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/kernels/*.cu)
file(GLOB CUDA_ENGINE_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/*.cu
                                                ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/*.cpp)

# The Hopper kernels (attention, the fused down input gradient: wgmma, bulk tensor copies) are
# sm_90a machine code only: they are
# built apart, for that one target, so no other device finds an image of it and the run-time
# selection (attention.cu) falls back to the mma.sync kernel there. The -gencode form, because
# nvcc 13.0's -arch=sm_90a shorthand also runs a plain sm_90 pass that rejects wgmma.
set(LORA4J_SM90A_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/kernels/attention_sm90.cu
                        ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/kernels/swiglu_dx_sm90.cu
                        ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/kernels/swiglu_gu_sm90.cu)
list(REMOVE_ITEM CUDA_KERNEL_SOURCES ${LORA4J_SM90A_SOURCE})
add_library(lora4j_cuda_kernels STATIC ${CUDA_KERNEL_SOURCES})
target_include_directories(lora4j_cuda_kernels PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                      ${CMAKE_CURRENT_SOURCE_DIR}/src)
set_target_properties(lora4j_cuda_kernels PROPERTIES POSITION_INDEPENDENT_CODE ON
                      CUDA_VISIBILITY_PRESET hidden)
target_compile_options(lora4j_cuda_kernels PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.3)
  add_library(lora4j_cuda_sm90a OBJECT ${LORA4J_SM90A_SOURCE})
  target_include_directories(lora4j_cuda_sm90a PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                       ${CMAKE_CURRENT_SOURCE_DIR}/src)
  set_target_properties(lora4j_cuda_sm90a PROPERTIES CUDA_ARCHITECTURES OFF
                        POSITION_INDEPENDENT_CODE ON CUDA_VISIBILITY_PRESET hidden)
  target_compile_options(lora4j_cuda_sm90a PRIVATE
    -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -lineinfo)
  target_sources(lora4j_cuda_kernels PRIVATE $<TARGET_OBJECTS:lora4j_cuda_sm90a>)
  target_compile_definitions(lora4j_cuda_kernels PRIVATE LORA4J_HAVE_SM90A=1)
  message(STATUS "lora4j: Hopper attention kernel built for sm_90a")
else()
  message(STATUS "lora4j: nvcc ${CMAKE_CUDA_COMPILER_VERSION} < 12.3: no sm_90a attention kernel")
endif()

message(STATUS "lora4j: building liblora4j_cuda (cuBLASLt loaded at run time)")
add_library(lora4j_cuda SHARED ${CUDA_ENGINE_SOURCES} ${CMAKE_CURRENT_SOURCE_DIR}/src/model/layout.cpp
                               ${CMAKE_CURRENT_SOURCE_DIR}/src/model/aggregate.cpp
                               ${CMAKE_CURRENT_SOURCE_DIR}/src/model/sampler.cpp)
target_include_directories(lora4j_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                               ${CMAKE_CURRENT_SOURCE_DIR}/src)
# One exported symbol (lora4j_backend_entry): the C++ inside, the static runtime included, stays
# private to the library, so it cannot clash with the core's copy of the shared model code.
target_link_libraries(lora4j_cuda PRIVATE lora4j_cuda_kernels CUDA::cudart_static
                                          Threads::Threads ${CMAKE_DL_LIBS})
set_target_properties(lora4j_cuda PROPERTIES CXX_VISIBILITY_PRESET hidden
                      VISIBILITY_INLINES_HIDDEN ON)
# -Wl,--no-undefined: a definition missing from the plugin fails the link here instead of the
# dlopen on a user's machine (where the core's own copy of the model code is not visible to it).
target_link_options(lora4j_cuda PRIVATE -Wl,--exclude-libs,ALL -Wl,--no-undefined
                    -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/exports.map)
lora4j_flags(lora4j_cuda)
set(LORA4J_HAVE_CUDA_BACKEND ON)

# The CUDA single-op benchmarks (lora4j_bench.h, device >= 0), opened by liblora4j_bench: the
# engine's kernels and GEMM wrapper plus the baseline variants; not part of the product.
add_library(lora4j_cuda_bench SHARED
  ${CMAKE_CURRENT_SOURCE_DIR}/src/bench/cuda/op_bench_cuda.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/bench/cuda/bench_baselines.cu
  ${CMAKE_CURRENT_SOURCE_DIR}/src/bench/cuda/nf4_gemm.cu
  ${CMAKE_CURRENT_SOURCE_DIR}/src/bench/cuda/bench_entry.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/bench/op_bench.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/gemm.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/cublaslt.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/dynlib.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/model/layout.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/model/aggregate.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/model/sampler.cpp)
target_include_directories(lora4j_cuda_bench PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                     ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_link_libraries(lora4j_cuda_bench PRIVATE lora4j_cuda_kernels CUDA::cudart_static
                                                Threads::Threads ${CMAKE_DL_LIBS})
target_compile_options(lora4j_cuda_bench PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
set_target_properties(lora4j_cuda_bench PROPERTIES CXX_VISIBILITY_PRESET hidden
                      CUDA_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_link_options(lora4j_cuda_bench PRIVATE -Wl,--exclude-libs,ALL -Wl,--no-undefined
                    -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/src/bench/cuda/exports.map)
lora4j_flags(lora4j_cuda_bench)
# The declaration check needs the real cublasLt.h (the GPU machine's toolkit).
if(TARGET CUDA::cublasLt)
  set(LORA4J_HAVE_CUBLAS_HEADERS ON)
endif()
# The NCCL declaration check needs the real nccl.h (the GPU machine has it in /usr/include); NCCL
# itself is opened at run time (src/cuda/nccl.h), so nothing else needs it.
find_path(LORA4J_NCCL_INCLUDE_DIR nccl.h HINTS $ENV{NCCL_HOME}/include ${CUDAToolkit_INCLUDE_DIRS})
