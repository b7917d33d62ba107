# Decides whether the NCCL communicator (train/distributed/nccl_communicator.cpp) is built:
# ROPEVIT_NCCL=AUTO builds it when the CUDA backend is on and nccl.h + libnccl are found, ON
# requires them, OFF leaves it out (dist.backend = nccl then stops with an error saying so).
# Sets RV_HAVE_NCCL, NCCL_INCLUDE_DIR and NCCL_LIBRARY, and adds a line to the summary.
#
# Where NCCL is looked for, in order: NCCL_ROOT / $NCCL_ROOT / $NCCL_HOME, the CUDA toolkit
# (the NVIDIA packages put nccl.h next to cuda_runtime.h), /usr/local and the system paths, and
# the Python package nvidia.nccl (PyTorch's pip wheel: include/ and lib/libnccl.so.2, no
# unversioned libnccl.so, hence the second name). GPU machines with only PyTorch installed have
# NCCL in that last place alone.

set(ROPEVIT_NCCL AUTO CACHE STRING "Build the NCCL communicator: AUTO (with CUDA, when NCCL is found), ON or OFF")
set_property(CACHE ROPEVIT_NCCL PROPERTY STRINGS AUTO ON OFF)
if(NOT ROPEVIT_NCCL MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "ROPEVIT_NCCL must be AUTO, ON or OFF, got '${ROPEVIT_NCCL}'")
endif()

set(RV_HAVE_NCCL OFF)
set(rv_nccl_why "")
if(ROPEVIT_NCCL STREQUAL "OFF")
  set(rv_nccl_why "off (ROPEVIT_NCCL=OFF)")
elseif(NOT RV_HAVE_CUDA)
  set(rv_nccl_why "off: needs the CUDA backend (ROPEVIT_CUDA)")
else()
  set(rv_nccl_hints ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME})
  if(CUDAToolkit_LIBRARY_ROOT)
    list(APPEND rv_nccl_hints ${CUDAToolkit_LIBRARY_ROOT})
  endif()
  foreach(dir ${CUDAToolkit_INCLUDE_DIRS})
    get_filename_component(parent ${dir} DIRECTORY)
    list(APPEND rv_nccl_hints ${parent})
  endforeach()
  list(APPEND rv_nccl_hints /usr/local/cuda /usr/local)
  find_package(Python3 QUIET COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    # nvidia.nccl is a namespace package (no __file__): its folder is __path__[0].
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import nvidia.nccl as m; print(list(m.__path__)[0])"
                    OUTPUT_VARIABLE rv_nccl_py OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rv_nccl_py_rc)
    if(rv_nccl_py_rc EQUAL 0 AND rv_nccl_py)
      list(APPEND rv_nccl_hints ${rv_nccl_py})
    endif()
  endif()
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${rv_nccl_hints} PATH_SUFFIXES include)
  # The library of the same installation as the header first (a pip NCCL next to the toolkit's
  # must not pair its header with the toolkit's library); NAMES_PER_DIR: both names, folder by folder.
  set(rv_nccl_home "")
  if(NCCL_INCLUDE_DIR)
    get_filename_component(rv_nccl_home ${NCCL_INCLUDE_DIR} DIRECTORY)
  endif()
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR HINTS ${rv_nccl_home} ${rv_nccl_hints}
               PATH_SUFFIXES lib lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(RV_HAVE_NCCL ON)
  else()
    set(rv_nccl_why "off: nccl.h or libnccl not found (install NCCL, pip install nvidia-nccl-cu12, or set NCCL_ROOT)")
  endif()
endif()

if(ROPEVIT_NCCL STREQUAL "ON" AND NOT RV_HAVE_NCCL)
  message(FATAL_ERROR "ROPEVIT_NCCL=ON but NCCL cannot be built: ${rv_nccl_why}")
endif()
if(RV_HAVE_NCCL)
  file(STRINGS ${NCCL_INCLUDE_DIR}/nccl.h rv_nccl_ver REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE "[^0-9;]" "" rv_nccl_ver "${rv_nccl_ver}")
  string(REPLACE ";" "." rv_nccl_ver "${rv_nccl_ver}")
  rv_report("NCCL" RV_HAVE_NCCL "${rv_nccl_ver} ${NCCL_LIBRARY} (multi-GPU data-parallel training)")
else()
  rv_report("NCCL" RV_HAVE_NCCL "${rv_nccl_why}")
endif()
