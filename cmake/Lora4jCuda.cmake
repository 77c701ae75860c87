# The CUDA backend. Built when nvcc is found. liblora4j_cuda needs cuBLASLt; where the toolkit
# has no cuBLAS (developer and CI machines), only the kernels that need none are compiled, into
# a static library, so that they are at least checked by the compiler.
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

if(CUDA_KERNEL_SOURCES)
  add_library(lora4j_cuda_kernels STATIC ${CUDA_KERNEL_SOURCES})
  target_include_directories(lora4j_cuda_kernels PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                        ${CMAKE_CURRENT_SOURCE_DIR}/src)
  set_target_properties(lora4j_cuda_kernels PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(lora4j_cuda_kernels PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
endif()

if(TARGET CUDA::cublasLt AND CUDA_ENGINE_SOURCES)
  message(STATUS "lora4j: cuBLASLt found; building liblora4j_cuda")
  add_library(lora4j_cuda SHARED ${CUDA_ENGINE_SOURCES} ${CMAKE_CURRENT_SOURCE_DIR}/src/model/layout.cpp
                                 ${CMAKE_CURRENT_SOURCE_DIR}/src/model/op_bench.cpp)
  target_include_directories(lora4j_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                 ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(lora4j_cuda PRIVATE lora4j_cuda_kernels CUDA::cudart_static
                                            CUDA::cublasLt CUDA::cublas Threads::Threads)
  lora4j_flags(lora4j_cuda)
  set(LORA4J_HAVE_CUDA_BACKEND ON)
else()
  message(STATUS "lora4j: no cuBLASLt in this CUDA toolkit; liblora4j_cuda not built")
endif()
