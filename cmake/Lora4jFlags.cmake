# Compiler flags shared by every lora4j target.
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
# The instruction set of the host code: x86-64-v2 runs on every x86-64 machine of the last decade
# (the jar's library); the GPU script builds with "native" so the CPU reference engine of the
# real-width tests runs at the speed of the machine's vector units.
set(LORA4J_MARCH "x86-64-v2" CACHE STRING "-march= for the C++ code")
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()

function(lora4j_flags target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -fno-strict-aliasing>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CONFIG:Release>>:-O3 -march=${LORA4J_MARCH}>)
  if(LORA4J_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  # The library is loaded from wherever the jar extracts it: no build path baked in.
  set_target_properties(${target} PROPERTIES SKIP_BUILD_RPATH OFF BUILD_RPATH "\$ORIGIN"
                                             INSTALL_RPATH "\$ORIGIN")
endfunction()
