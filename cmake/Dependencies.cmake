# Finds every third-party dependency as a real package; nothing is vendored.
# sentencepiece: scripts/setup.sh builds 0.2.x from its PyPI source distribution into
# build/deps/sentencepiece (static, PIC, -O3); it is preferred when present, as its public
# Normalize() (absent from Debian's 0.1.97) enables the word-cached encoding of BPE models. Otherwise Debian's: it has no CMake config, so pkg-config, or (on the
# GPU machine, which has no pkg-config) a plain search under CMAKE_PREFIX_PATH, e.g. the unpacked
# .debs of gpu_check.sh. Either way the target is SentencePiece::SentencePiece.
find_package(PkgConfig QUIET)
get_filename_component(_longalign_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(LONGALIGN_SENTENCEPIECE_ROOT "${_longalign_root}/build/deps/sentencepiece" CACHE PATH
    "sentencepiece built by scripts/setup.sh (lib/, include/); empty to use the system's")
# LONGALIGN_SENTENCEPIECE_VERSION: the library's version where known (empty when found by a plain
# search), for tests/data/tokenize/spm_parity_test.sh, whose Unigram oracle depends on it.
set(LONGALIGN_SENTENCEPIECE_VERSION "")
if(NOT TARGET SentencePiece::SentencePiece)
  set(_spm_root "${LONGALIGN_SENTENCEPIECE_ROOT}")
  if(_spm_root AND EXISTS "${_spm_root}/lib/libsentencepiece.a" AND EXISTS "${_spm_root}/lib/libsentencepiece_train.a"
     AND EXISTS "${_spm_root}/include/sentencepiece_processor.h")
    file(STRINGS "${_spm_root}/VERSION" _spm_version LIMIT_COUNT 1)
    add_library(SentencePiece::SentencePiece INTERFACE IMPORTED)
    target_include_directories(SentencePiece::SentencePiece INTERFACE "${_spm_root}/include")
    # The trainer library uses the encoder's symbols: it comes first.
    target_link_libraries(SentencePiece::SentencePiece INTERFACE "${_spm_root}/lib/libsentencepiece_train.a"
                          "${_spm_root}/lib/libsentencepiece.a" Threads::Threads)
    message(STATUS "sentencepiece: ${_spm_version} from ${_spm_root} (static)")
    set(LONGALIGN_SENTENCEPIECE_VERSION "${_spm_version}")
  else()
    if(PkgConfig_FOUND)
      pkg_check_modules(SPM QUIET IMPORTED_TARGET sentencepiece)
    endif()
    add_library(SentencePiece::SentencePiece INTERFACE IMPORTED)
    if(TARGET PkgConfig::SPM)
      target_link_libraries(SentencePiece::SentencePiece INTERFACE PkgConfig::SPM)
      set(_spm_where "${SPM_VERSION}, pkg-config")
      set(LONGALIGN_SENTENCEPIECE_VERSION "${SPM_VERSION}")
    else()
      find_path(SPM_INCLUDE_DIR sentencepiece_processor.h REQUIRED)
      find_library(SPM_LIBRARY sentencepiece REQUIRED)
      find_library(SPM_TRAIN_LIBRARY sentencepiece_train REQUIRED)
      target_include_directories(SentencePiece::SentencePiece INTERFACE ${SPM_INCLUDE_DIR})
      target_link_libraries(SentencePiece::SentencePiece INTERFACE ${SPM_TRAIN_LIBRARY} ${SPM_LIBRARY})
      set(_spm_where "${SPM_LIBRARY}")
    endif()
    if(_spm_root)
      message(STATUS "sentencepiece: the system's (${_spm_where}), as ${_spm_root} holds no build; before "
                     "0.2, tokenizing is about 2x slower: run scripts/setup.sh to build sentencepiece 0.2 there")
    else()
      message(STATUS "sentencepiece: the system's (${_spm_where}), as LONGALIGN_SENTENCEPIECE_ROOT is empty")
    endif()
  endif()
endif()
# PCRE2 (tokenizer.json regexes) and ICU (its normalizers): the same pkg-config-or-search pair.
if(PkgConfig_FOUND)
  pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
  if(LONGALIGN_WITH_CAIRO)
    pkg_check_modules(CAIRO REQUIRED IMPORTED_TARGET cairo)  # libcairo2-dev; scripts/setup.sh installs it
  endif()
  pkg_check_modules(ICUUC QUIET IMPORTED_TARGET icu-uc)
endif()
if(NOT TARGET PkgConfig::PCRE2)
  find_path(PCRE2_INCLUDE_DIR pcre2.h REQUIRED)
  find_library(PCRE2_LIBRARY pcre2-8 REQUIRED)
  add_library(PkgConfig::PCRE2 INTERFACE IMPORTED)
  target_include_directories(PkgConfig::PCRE2 INTERFACE ${PCRE2_INCLUDE_DIR})
  target_link_libraries(PkgConfig::PCRE2 INTERFACE ${PCRE2_LIBRARY})
endif()
if(NOT TARGET PkgConfig::ICUUC)
  find_path(ICU_INCLUDE_DIR unicode/normalizer2.h REQUIRED)
  find_library(ICU_UC_LIBRARY icuuc REQUIRED)
  find_library(ICU_DATA_LIBRARY icudata REQUIRED)
  add_library(PkgConfig::ICUUC INTERFACE IMPORTED)
  target_include_directories(PkgConfig::ICUUC INTERFACE ${ICU_INCLUDE_DIR})
  target_link_libraries(PkgConfig::ICUUC INTERFACE ${ICU_UC_LIBRARY} ${ICU_DATA_LIBRARY})
endif()
find_package(yaml-cpp REQUIRED)          # bookworm 0.7: target is plain `yaml-cpp`
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(Threads REQUIRED)

# CUDA toolkit and NCCL (at /usr/local/cuda here) when present: the kernels and multi-GPU
# training build against them; their absence only disables those parts.
find_package(CUDAToolkit QUIET)
# The pip wheel's NCCL (nvidia-nccl-*) sits beside torch in site-packages.
file(GLOB _wheel_nccl "${CMAKE_SOURCE_DIR}/build/venv/lib/python*/site-packages/nvidia/nccl*"
                      "/opt/torch/.venv/lib/python*/site-packages/nvidia/nccl*")
find_library(NCCL_LIBRARY nccl HINTS /usr/local/cuda/lib64 /usr/local/cuda/lib ${CUDAToolkit_LIBRARY_DIR})
find_path(NCCL_INCLUDE_DIR nccl.h HINTS /usr/local/cuda/include ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include
          PATHS ${_wheel_nccl})
message(STATUS "CUDA toolkit: ${CUDAToolkit_VERSION} (${CUDAToolkit_FOUND}); NCCL: ${NCCL_LIBRARY}")

if(LONGALIGN_WITH_TORCH)
  # The venv's python: finds torch for CMake, and runs the HF parity oracles in tests.
  find_program(LONGALIGN_PYTHON NAMES python3 python HINTS ${CMAKE_SOURCE_DIR}/build/venv/bin NO_DEFAULT_PATH)
  if(NOT DEFINED Torch_DIR AND NOT CMAKE_PREFIX_PATH MATCHES "torch")
    if(LONGALIGN_PYTHON)
      execute_process(COMMAND ${LONGALIGN_PYTHON} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                      OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
                      RESULT_VARIABLE _torch_rc)
      if(_torch_rc EQUAL 0)
        list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
      endif()
    endif()
  endif()
  # Torch's CMake otherwise picks CUDA archs itself; we build for A100 and H100.
  if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
    set(ENV{TORCH_CUDA_ARCH_LIST} "8.0;9.0")
  endif()
  find_package(Torch REQUIRED)
  message(STATUS "LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}")
endif()

# Links torch into TARGET and gives it the shared precompiled torch header, which is what
# keeps a 2-core rebuild bearable (each <torch/torch.h> parse costs 10-30 s).
# VISIBILITY (default PUBLIC) is PRIVATE for libraries whose headers expose no torch type, so
# their users (the CLI) never see torch's bundled fmt headers.
function(longalign_use_torch target)
  set(vis PUBLIC)
  if(ARGC GREATER 1)
    set(vis ${ARGV1})
  endif()
  target_link_libraries(${target} ${vis} ${TORCH_LIBRARIES})
  # libtorch.so exports its own std::filesystem symbols, some broken (remove_all jumps to null).
  # Loading libstdc++ first makes the dynamic linker bind those names to the real library.
  target_link_options(${target} PUBLIC "LINKER:--no-as-needed" "-lstdc++")
  separate_arguments(_tflags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(${target} ${vis} ${_tflags})
  if(TARGET longalign_torch_pch)
    target_precompile_headers(${target} REUSE_FROM longalign_torch_pch)
  endif()
endfunction()
