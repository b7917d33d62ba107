# Finds the optional outside libraries and records a ✓/✗ line for each, printed at the end of
# configuration. Every one of them is optional so that a bare CUDA image (no Debian packages)
# still configures: without OpenBLAS matmul falls back to the engine's own blocked GEMM.

set(RV_SUMMARY "")
macro(rv_report name found detail)
  if(${found})
    string(APPEND RV_SUMMARY "  [x] ${name} ${detail}\n")
  else()
    string(APPEND RV_SUMMARY "  [ ] ${name} ${detail}\n")
  endif()
endmacro()

# Header-only libraries may also come from third_party/vendor (a git-ignored folder that
# scripts/gpu-check fills for machines without Debian's packages).
set(RV_VENDOR_INCLUDE ${PROJECT_SOURCE_DIR}/third_party/vendor/include)

# OpenMP
find_package(OpenMP)
rv_report("OpenMP" OpenMP_CXX_FOUND "(threads for CPU kernels)")

# OpenBLAS, by name: Debian's generic libblas may be the reference BLAS, 30 times slower.
find_path(OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/x86_64-linux-gnu/openblas-pthread
        /usr/include/openblas /usr/include/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
find_library(OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/x86_64-linux-gnu/openblas-pthread
        /usr/lib/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
if(NOT OPENBLAS_LIBRARY)
  find_library(OPENBLAS_LIBRARY NAMES openblas)
  find_path(OPENBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
endif()
if(OPENBLAS_INCLUDE_DIR AND OPENBLAS_LIBRARY)
  set(RV_HAVE_OPENBLAS ON)
else()
  set(RV_HAVE_OPENBLAS OFF)
endif()
rv_report("OpenBLAS" RV_HAVE_OPENBLAS "${OPENBLAS_LIBRARY}")

# zlib: reads gzip-compressed files (Debian ships Fashion-MNIST's IDX files as .gz). Optional:
# without it plain files still load and a .gz file is refused with a clear error.
find_package(ZLIB QUIET)
if(ZLIB_FOUND)
  set(RV_HAVE_ZLIB ON)
else()
  set(RV_HAVE_ZLIB OFF)
endif()
if(RV_HAVE_ZLIB)
  rv_report("zlib" RV_HAVE_ZLIB "${ZLIB_LIBRARIES} (gzip-compressed IDX files, compressed PNG plots)")
else()
  rv_report("zlib" RV_HAVE_ZLIB "not found: gzip-compressed IDX files cannot be read, PNG plots are stored uncompressed (install zlib1g-dev)")
endif()

# TurboJPEG (libjpeg-turbo's simple API: scaled DCT decode): optional, the GPU image lacks it.
# Without it a JPEG is refused at run time with an error that names the Debian package.
find_path(TURBOJPEG_INCLUDE_DIR turbojpeg.h)
find_library(TURBOJPEG_LIBRARY NAMES turbojpeg)
if(TURBOJPEG_INCLUDE_DIR AND TURBOJPEG_LIBRARY)
  set(RV_HAVE_TURBOJPEG ON)
  rv_report("turbojpeg" RV_HAVE_TURBOJPEG "${TURBOJPEG_LIBRARY} (JPEG decoding)")
else()
  set(RV_HAVE_TURBOJPEG OFF)
  rv_report("turbojpeg" RV_HAVE_TURBOJPEG "not found: JPEG images cannot be decoded (install libturbojpeg0-dev)")
endif()

# libjpeg-turbo's libjpeg API (jpeglib.h, Debian libjpeg62-turbo-dev): region-of-interest decode
# (jpeg_crop_scanline / jpeg_skip_scanlines) for the training crop, data/decode_jpeg_roi.cpp.
# Optional: without it the crop is cut from a whole (scaled) TurboJPEG decode, same pixels, slower.
find_path(LIBJPEG_INCLUDE_DIR jpeglib.h)
find_library(LIBJPEG_LIBRARY NAMES jpeg)
if(LIBJPEG_INCLUDE_DIR AND LIBJPEG_LIBRARY AND RV_HAVE_TURBOJPEG)
  set(RV_HAVE_LIBJPEG ON)
  rv_report("libjpeg" RV_HAVE_LIBJPEG "${LIBJPEG_LIBRARY} (JPEG region-of-interest decode)")
else()
  set(RV_HAVE_LIBJPEG OFF)
  rv_report("libjpeg" RV_HAVE_LIBJPEG "not found: training crops decode the whole JPEG (install libjpeg62-turbo-dev)")
endif()

# stb_image (header-only): PNG, BMP, GIF, ... Optional like TurboJPEG.
find_path(STB_IMAGE_INCLUDE_DIR stb_image.h PATHS ${RV_VENDOR_INCLUDE} /usr/include PATH_SUFFIXES stb)
if(STB_IMAGE_INCLUDE_DIR)
  set(RV_HAVE_STB_IMAGE ON)
  rv_report("stb_image" RV_HAVE_STB_IMAGE "${STB_IMAGE_INCLUDE_DIR} (PNG and other image decoding)")
else()
  set(RV_HAVE_STB_IMAGE OFF)
  rv_report("stb_image" RV_HAVE_STB_IMAGE "not found: PNG images cannot be decoded (install libstb-dev)")
endif()

# doctest (tests only)
find_path(DOCTEST_INCLUDE_DIR doctest/doctest.h PATHS ${RV_VENDOR_INCLUDE} /usr/include)
if(DOCTEST_INCLUDE_DIR)
  set(RV_HAVE_DOCTEST ON)
else()
  set(RV_HAVE_DOCTEST OFF)
endif()
rv_report("doctest" RV_HAVE_DOCTEST "${DOCTEST_INCLUDE_DIR}")
if(ROPEVIT_TESTS AND NOT RV_HAVE_DOCTEST)
  message(FATAL_ERROR "doctest/doctest.h not found: install Debian's doctest-dev (scripts/setup does) "
                      "or put the header under third_party/vendor/include, or configure with -DROPEVIT_TESTS=OFF")
endif()

# nlohmann/json (header-only; safetensors headers and configs)
find_path(NLOHMANN_JSON_INCLUDE_DIR nlohmann/json.hpp PATHS ${RV_VENDOR_INCLUDE} /usr/include)
if(NLOHMANN_JSON_INCLUDE_DIR)
  set(RV_HAVE_JSON ON)
else()
  message(FATAL_ERROR "nlohmann/json.hpp not found: install Debian's nlohmann-json3-dev (scripts/setup does) "
                      "or put the header under third_party/vendor/include")
endif()
rv_report("nlohmann-json" RV_HAVE_JSON "${NLOHMANN_JSON_INCLUDE_DIR}")

# stb_image_write (header-only, Debian libstb-dev): JPEG and PNG writing for `ropevit
# make-scenes`. Optional: without it scenes' JPEGs go through TurboJPEG when that was found, and
# label PNGs through our own small writer (data/image_encode.cpp).
find_path(STB_IMAGE_WRITE_INCLUDE_DIR stb_image_write.h PATHS ${RV_VENDOR_INCLUDE} /usr/include PATH_SUFFIXES stb)
if(STB_IMAGE_WRITE_INCLUDE_DIR)
  set(RV_HAVE_STB_IMAGE_WRITE ON)
  rv_report("stb_image_write" RV_HAVE_STB_IMAGE_WRITE "${STB_IMAGE_WRITE_INCLUDE_DIR} (JPEG / PNG writing for make-scenes)")
else()
  set(RV_HAVE_STB_IMAGE_WRITE OFF)
  rv_report("stb_image_write" RV_HAVE_STB_IMAGE_WRITE "not found: make-scenes writes JPEGs only with TurboJPEG (install libstb-dev)")
endif()


function(rv_print_summary)
  message(STATUS "ropevit configuration (${CMAKE_BUILD_TYPE}):\n${RV_SUMMARY}")
endfunction()

# MPI (Open MPI; Debian: libopenmpi-dev) for multi-process CPU training launched by mpirun
# (train/distributed/mpi_communicator.h). Optional: without it mpirun launches stop with an error
# saying how to get it, and torchrun / srun launches use TCP sockets instead.
option(ROPEVIT_MPI "Use MPI for multi-process training when it is found" ON)
set(RV_HAVE_MPI OFF)
if(ROPEVIT_MPI)
  # The CXX component (the project enables no C language); only MPI's C API is used, so the
  # deprecated C++ bindings are left out.
  set(MPI_CXX_SKIP_MPICXX ON)
  find_package(MPI QUIET COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(RV_HAVE_MPI ON)
  endif()
endif()
if(RV_HAVE_MPI)
  rv_report("MPI" RV_HAVE_MPI "${MPI_CXX_LIBRARIES} (mpirun launches of multi-process training)")
else()
  rv_report("MPI" RV_HAVE_MPI "not found: mpirun launches stop with an error; torchrun / srun use TCP (install libopenmpi-dev)")
endif()
