# Decides whether the cuDNN convolution path (cuda/kernels/cudnn_conv.cpp, ROPEVIT_CONV=cudnn) is
# built: ROPEVIT_CUDNN=AUTO builds it when the CUDA backend is on and cudnn.h + libcudnn are found,
# ON requires them, OFF leaves it out (ROPEVIT_CONV=cudnn then stops with an error saying so).
# Sets RV_HAVE_CUDNN, CUDNN_INCLUDE_DIR and CUDNN_LIBRARY, and adds a line to the summary.
#
# Where cuDNN is looked for, in order: CUDNN_ROOT / $CUDNN_ROOT / $CUDNN_HOME, the CUDA toolkit,
# /usr/local and the system paths (Debian / NVIDIA packages: libcudnn9-dev-cuda-*), and the Python
# package nvidia.cudnn (PyTorch's pip wheel nvidia-cudnn-cu*: include/ and lib/libcudnn.so.9, no
# unversioned libcudnn.so, hence the second name). GPU machines with only PyTorch installed have
# cuDNN in that last place alone. Only the legacy convolution API of cudnn.h is used (cuDNN 8 and 9).

set(ROPEVIT_CUDNN AUTO CACHE STRING "Build the cuDNN convolution path: AUTO (with CUDA, when cuDNN is found), ON or OFF")
set_property(CACHE ROPEVIT_CUDNN PROPERTY STRINGS AUTO ON OFF)
if(NOT ROPEVIT_CUDNN MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "ROPEVIT_CUDNN must be AUTO, ON or OFF, got '${ROPEVIT_CUDNN}'")
endif()

set(RV_HAVE_CUDNN OFF)
set(rv_cudnn_why "")
if(ROPEVIT_CUDNN STREQUAL "OFF")
  set(rv_cudnn_why "off (ROPEVIT_CUDNN=OFF)")
elseif(NOT RV_HAVE_CUDA)
  set(rv_cudnn_why "off: needs the CUDA backend (ROPEVIT_CUDA)")
else()
  set(rv_cudnn_hints ${CUDNN_ROOT} $ENV{CUDNN_ROOT} $ENV{CUDNN_HOME})
  if(CUDAToolkit_LIBRARY_ROOT)
    list(APPEND rv_cudnn_hints ${CUDAToolkit_LIBRARY_ROOT})
  endif()
  foreach(dir ${CUDAToolkit_INCLUDE_DIRS})
    get_filename_component(parent ${dir} DIRECTORY)
    list(APPEND rv_cudnn_hints ${parent})
  endforeach()
  list(APPEND rv_cudnn_hints /usr/local/cuda /usr/local)
  find_package(Python3 QUIET COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    # nvidia.cudnn is a namespace package (no __file__): its folder is __path__[0].
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import nvidia.cudnn as m; print(list(m.__path__)[0])"
                    OUTPUT_VARIABLE rv_cudnn_py OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                    RESULT_VARIABLE rv_cudnn_py_rc)
    if(rv_cudnn_py_rc EQUAL 0 AND rv_cudnn_py)
      list(APPEND rv_cudnn_hints ${rv_cudnn_py})
    endif()
  endif()
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${rv_cudnn_hints} PATH_SUFFIXES include)
  # The library of the same installation as the header first; NAMES_PER_DIR: both names, folder by folder.
  set(rv_cudnn_home "")
  if(CUDNN_INCLUDE_DIR)
    get_filename_component(rv_cudnn_home ${CUDNN_INCLUDE_DIR} DIRECTORY)
  endif()
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 libcudnn.so.8 NAMES_PER_DIR
               HINTS ${rv_cudnn_home} ${rv_cudnn_hints} PATH_SUFFIXES lib lib64)
  if(CUDNN_INCLUDE_DIR AND CUDNN_LIBRARY)
    set(RV_HAVE_CUDNN ON)
  else()
    set(rv_cudnn_why "off: cudnn.h or libcudnn not found (install cuDNN, pip install nvidia-cudnn-cu12, or set CUDNN_ROOT)")
  endif()
endif()

if(ROPEVIT_CUDNN STREQUAL "ON" AND NOT RV_HAVE_CUDNN)
  message(FATAL_ERROR "ROPEVIT_CUDNN=ON but cuDNN cannot be built: ${rv_cudnn_why}")
endif()
if(RV_HAVE_CUDNN)
  # cuDNN 9 keeps the version in cudnn_version.h, cuDNN 8 too; older ones in cudnn.h.
  set(rv_cudnn_ver_file ${CUDNN_INCLUDE_DIR}/cudnn_version.h)
  if(NOT EXISTS ${rv_cudnn_ver_file})
    set(rv_cudnn_ver_file ${CUDNN_INCLUDE_DIR}/cudnn.h)
  endif()
  file(STRINGS ${rv_cudnn_ver_file} rv_cudnn_ver REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
  string(REGEX REPLACE "[^0-9;]" "" rv_cudnn_ver "${rv_cudnn_ver}")
  string(REPLACE ";" "." rv_cudnn_ver "${rv_cudnn_ver}")
  rv_report("cuDNN" RV_HAVE_CUDNN "${rv_cudnn_ver} ${CUDNN_LIBRARY} (ROPEVIT_CONV=cudnn: convolution reference)")
else()
  rv_report("cuDNN" RV_HAVE_CUDNN "${rv_cudnn_why}")
endif()
