#!/usr/bin/env bash
# tests/fuzz/build_quick.sh: the five libFuzzer targets in minutes instead of an hour on a small
# machine. The CMake fuzz build (tests/fuzz/CMakeLists.txt, -DROPEVIT_FUZZ=ON) recompiles the
# whole engine with clang + ASan/UBSan; this script instruments only the parsers each target
# feeds (the files listed below) and links everything else from the normal GCC build, which
# must exist (scripts/build). Coverage feedback and sanitizer checks then cover those parsers,
# not the uninstrumented rest (tensor allocation and the like), which is what the targets test.
#   tests/fuzz/build_quick.sh [BUILD_DIR=build] [OUT_DIR=build-fuzz-quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=${2:-build-fuzz-quick}
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -I. -isystem /usr/include/stb -isystem /usr/include/x86_64-linux-gnu/openblas-openmp -fopenmp
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -DRV_HAVE_ZLIB=1 -DRV_HAVE_TURBOJPEG=1 -DRV_HAVE_LIBJPEG=1 -DRV_HAVE_STB_IMAGE=1)
libs=("$build/data/librv_data.a" "$build/engine/librv_engine.a" -lturbojpeg -ljpeg -lz
      -L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -fopenmp -lpthread)
# target: the sources compiled with instrumentation (the parsers it exercises)
declare -A srcs=(
  [safetensors]="engine/io/safetensors.cpp"
  [idx]="data/idx.cpp data/gzip.cpp"
  [jpeg]="data/decode_image.cpp data/decode_jpeg.cpp data/decode_jpeg_roi.cpp data/exif.cpp data/decode_stb.cpp"
  [png]="data/decode_image.cpp data/decode_jpeg.cpp data/decode_jpeg_roi.cpp data/exif.cpp data/decode_stb.cpp data/png_indices.cpp"
  [coco]="data/coco.cpp"
)
for t in safetensors idx jpeg png coco; do
  echo "fuzz_$t"
  # shellcheck disable=SC2086
  clang++ "${flags[@]}" tests/fuzz/fuzz_$t.cpp ${srcs[$t]} "${libs[@]}" -o "$out/fuzz_$t"
done
