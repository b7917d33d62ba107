# Decides whether the CUDA backend (cuda/) is built: ROPEVIT_CUDA=AUTO builds it when nvcc is
# found, ON requires it, OFF leaves it out (then the build holds no CUDA symbol at all). Sets
# RV_HAVE_CUDA and adds a line to the configuration summary.
#
# Architectures: CMAKE_CUDA_ARCHITECTURES defaults to "80;90a" (A100; H100/H200 with Hopper's
# own instructions). Override it, e.g. -DCMAKE_CUDA_ARCHITECTURES=90a to halve device compile
# time where only Hopper runs the code (scripts/gpu-check does), or =native on a GPU machine.

set(RV_HAVE_CUDA OFF)
if(NOT ROPEVIT_CUDA MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "ROPEVIT_CUDA must be AUTO, ON or OFF, got '${ROPEVIT_CUDA}'")
endif()

if(NOT ROPEVIT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)  # finds nvcc on PATH, in CUDACXX or CMAKE_CUDA_COMPILER
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES "80;90a" CACHE STRING "CUDA architectures to compile for" FORCE)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    # .cu files include only C++17-clean headers (engine/backend.h, engine/dtype.h); CMake 3.25
    # does not know how to ask nvcc for C++20.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(RV_HAVE_CUDA ON)
  elseif(ROPEVIT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "ROPEVIT_CUDA=ON but no CUDA compiler (nvcc) was found: put nvcc on PATH, set CUDACXX, "
                        "or configure with -DROPEVIT_CUDA=AUTO / OFF")
  endif()
endif()

if(RV_HAVE_CUDA)
  rv_report("CUDA" RV_HAVE_CUDA
            "nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES} (ROPEVIT_CUDA=${ROPEVIT_CUDA})")
else()
  if(ROPEVIT_CUDA STREQUAL "OFF")
    rv_report("CUDA" RV_HAVE_CUDA "off (ROPEVIT_CUDA=OFF)")
  else()
    rv_report("CUDA" RV_HAVE_CUDA "off: no nvcc found (ROPEVIT_CUDA=AUTO)")
  endif()
endif()
if(RV_HAVE_CUDA)
  string(APPEND RV_SUMMARY "  backends: cpu, cuda\n")
else()
  string(APPEND RV_SUMMARY "  backends: cpu\n")
endif()
