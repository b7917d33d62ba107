# Unity builds of the libraries behind the `ropevit` program (configure with -DCMAKE_UNITY_BUILD=ON;
# scripts/demo does). CMake then compiles each library as a few "unity" files that #include a batch of
# its .cpp files, so the heavy headers (the STL, nlohmann/json, engine/tensor.h) are parsed once per
# batch instead of once per file: the demo's build of the program takes about a quarter less CPU
# time (499 against 672 CPU seconds from clean, measured on a shared 2-core machine; it saves the
# repeated parsing, not the code generation).
# The sources are written to allow it: no two .cpp files of one library define the same file-local
# name (anonymous namespace, static function, using-declaration). Keep it so when adding a helper:
# give it a name that says what it is for (layer_norm_forward_kernel, not forward_kernel).
#
# Left out of the batches (compiled alone, exactly as in a normal build):
#   - files with their own compile options or definitions (CMake skips those by itself:
#     data/tensor_transforms.cpp, engine/backend.cpp with CUDA);
#   - files that change the compiler's options for the rest of the file with a pragma
#     (engine/CMakeLists.txt marks them): in a batch it would leak into the files after them;
#   - the CUDA backend's host sources (cuda/), which join rv_engine when CUDA is built, so that
#     turning CUDA on does not reshuffle the engine's batches;
#   - the test programs (tests/CMakeLists.txt turns unity builds off there): one file each.
#
# Batch size: ROPEVIT_UNITY_BATCH_SIZE files per unity file (see its description below). With 8,
# the program's build is 31 compile jobs, the heaviest (an rv_engine batch, with ops/math.cpp)
# about a fifth of the total; the jobs' measured times packed onto 2 cores in ninja's order end
# within 1% of half the total, so both cores stay busy to the end.
set(ROPEVIT_UNITY_BATCH_SIZE 8 CACHE STRING
    "Files per unity source when CMAKE_UNITY_BUILD is ON: bigger batches parse the headers fewer times, but too few of them leave a core idle at the end of the build")

if(CMAKE_UNITY_BUILD)
  foreach(target rv_engine rv_data rv_models rv_train)
    set_target_properties(${target} PROPERTIES UNITY_BUILD_BATCH_SIZE ${ROPEVIT_UNITY_BATCH_SIZE})
  endforeach()
  get_target_property(rv_engine_sources rv_engine SOURCES)
  list(FILTER rv_engine_sources INCLUDE REGEX "^${PROJECT_SOURCE_DIR}/cuda/")
  if(rv_engine_sources)
    set_source_files_properties(${rv_engine_sources} TARGET_DIRECTORY rv_engine
                                PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
  endif()
  string(APPEND RV_SUMMARY "  unity build: rv_engine, rv_data, rv_models, rv_train (${ROPEVIT_UNITY_BATCH_SIZE} files per batch)\n")
endif()
