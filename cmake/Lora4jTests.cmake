# Native tests: one executable per file in native/tests, run by ctest.
# A test file named test_*_cuda.cpp is built with the CUDA backend (wherever nvcc is); it exits
# 77 (skipped) when no device is found at run time, unless LORA4J_REQUIRE_GPU=1 (the GPU
# script), where a missing device is a failure.
file(GLOB TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/test_*.cpp)
set(LORA4J_TESTDATA_ENV
    "LORA4J_TESTDATA=${CMAKE_CURRENT_SOURCE_DIR}/../java/src/test/resources/hf-reference")
foreach(src ${TEST_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  set(libs lora4j Threads::Threads)
  if(name MATCHES "^test_op_bench")  # the single-op benchmarks' library
    list(APPEND libs lora4j_bench)
  endif()
  set(env "${LORA4J_TESTDATA_ENV}")
  set(skip_code 0)
  if(name MATCHES "_cuda$")
    if(NOT LORA4J_HAVE_CUDA_BACKEND)
      continue()
    endif()
    if(name STREQUAL "test_cublaslt_decls_cuda")
      if(NOT LORA4J_HAVE_CUBLAS_HEADERS)
        continue()
      endif()
      list(APPEND libs CUDA::cublasLt ${CMAKE_DL_LIBS})
    endif()
    if(name STREQUAL "test_nccl_decls_cuda")
      if(NOT LORA4J_NCCL_INCLUDE_DIR)
        continue()
      endif()
      list(APPEND libs ${CMAKE_DL_LIBS})
    endif()
    list(APPEND libs lora4j_cuda_kernels CUDA::cudart)
    string(APPEND env ";LORA4J_CUDA_LIBRARY=$<TARGET_FILE:lora4j_cuda>")
    string(APPEND env ";LORA4J_CUDA_BENCH_LIBRARY=$<TARGET_FILE:lora4j_cuda_bench>")
    set(skip_code 77)
  endif()
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                             ${CMAKE_CURRENT_SOURCE_DIR}/src
                                             ${CMAKE_CURRENT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${libs})
  if(name STREQUAL "test_cublaslt_decls_cuda")
    target_sources(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/cublaslt.cpp
                                   ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/dynlib.cpp)
  endif()
  if(name STREQUAL "test_gemm_cuda")  # the GEMM wrapper itself, outside the plugin
    target_sources(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/gemm.cpp
                                   ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/cublaslt.cpp
                                   ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/dynlib.cpp)
    target_link_libraries(${name} PRIVATE ${CMAKE_DL_LIBS})
  endif()
  if(name STREQUAL "test_nccl_decls_cuda")
    target_sources(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/nccl.cpp
                                   ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/dynlib.cpp)
    target_include_directories(${name} PRIVATE ${LORA4J_NCCL_INCLUDE_DIR})
  endif()
  lora4j_flags(${name})
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/tests)
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}")
  if(skip_code)
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE ${skip_code})
  endif()
endforeach()

# Benchmark executable of the CUDA backend (run by scripts/gpu/run.sh, STEPS=bench).
if(LORA4J_HAVE_CUDA_BACKEND)
  add_executable(bench_cuda ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_cuda.cpp)
  target_include_directories(bench_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(bench_cuda PRIVATE lora4j lora4j_cuda_kernels CUDA::cudart
                                           Threads::Threads ${CMAKE_DL_LIBS})
  # Time of each robust aggregation rule on the device at Mistral-7B rank-16 size (issue 14).
  add_executable(bench_aggregate_cuda ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_aggregate_cuda.cpp)
  target_include_directories(bench_aggregate_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                          ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(bench_aggregate_cuda PRIVATE lora4j lora4j_cuda_kernels CUDA::cudart
                                                     Threads::Threads)
  lora4j_flags(bench_aggregate_cuda)
  # Time of one sampled draw on the device (sample_feed) beside the greedy pick, at a Mistral
  # vocabulary on three kinds of logits.
  add_executable(bench_sample_cuda ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_sample_cuda.cpp)
  target_include_directories(bench_sample_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                       ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(bench_sample_cuda PRIVATE lora4j_cuda_kernels CUDA::cudart)
  lora4j_flags(bench_sample_cuda)
  # The engine's frozen GEMM shapes through cuBLASLt's first algorithms, on three kinds of
  # operands (scripts/gpu/run.sh, STEPS=gemms).
  add_executable(bench_gemm_cuda ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_gemm_cuda.cpp
                                 ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/cublaslt.cpp
                                 ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/dynlib.cpp)
  target_include_directories(bench_gemm_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                     ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(bench_gemm_cuda PRIVATE CUDA::cudart ${CMAKE_DL_LIBS})
  lora4j_flags(bench_gemm_cuda)
  # Kernel trace without Nsight Systems: a CUPTI injection library (CUDA_INJECTION64_PATH) that
  # writes the GPU's idle time between kernels and the kernels by total time at exit
  # (scripts/gpu/run.sh, STEPS=profile, where there is no nsys). Only where CUPTI is found.
  if(TARGET CUDA::cupti)
    add_library(lora4j_kernel_trace SHARED ${CMAKE_CURRENT_SOURCE_DIR}/bench/kernel_trace.cpp)
    target_link_libraries(lora4j_kernel_trace PRIVATE CUDA::cupti ${CMAKE_DL_LIBS})
    lora4j_flags(lora4j_kernel_trace)
  else()
    message(STATUS "lora4j: no CUPTI found; liblora4j_kernel_trace not built")
  endif()
endif()

# Timing of every op variant of the single-op benchmarks (lora4j_op_bench_*): CUDA at Mistral-7B
# shapes on the GPU machine (scripts/gpu/run.sh, STEPS=ops), or the CPU with --device -1. Needs
# only liblora4j_bench (the CUDA benchmarks are loaded at run time), so it is built everywhere.
add_executable(bench_ops ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_ops.cpp)
target_include_directories(bench_ops PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                             ${CMAKE_CURRENT_SOURCE_DIR}/tests)  # op_bench_cases.h
target_link_libraries(bench_ops PRIVATE lora4j_bench lora4j)
lora4j_flags(bench_ops)
