// libFuzzer target: the `train` YAML config loader, load_train_config
// (src/train/train_config.cpp, with the data section of src/data/pack/pack_job.cpp and the model
// checks of src/model/llama_config.cpp). The input is the YAML text; it is written to a
// per-process scratch file and loaded, alternately with and without require_data. An accepted
// config is printed with to_yaml, as --dry-run and checkpoints (train_config.yaml) do.
//
// A finding is any crash, sanitizer report or hang, or an exception other than
// longalign::RuntimeError / UsageError (yaml-cpp's own exceptions included: the loader must
// turn them into UsageError naming the key). With LONGALIGN_FUZZ_ROUNDTRIP=1 in the
// environment, a printed config that does not load again is a finding too; it is off by
// default because to_yaml does not yet round-trip every accepted config (a pack_dir-only data
// section prints `inputs:` with no list, and paths are printed unquoted).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_common.hpp"
#include "longalign/train/train_config.hpp"

using namespace longalign;
using namespace longalign::train;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto path = fuzz::scratch_dir() / "config.yaml";
  static const auto again = fuzz::scratch_dir() / "printed.yaml";
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  static const bool roundtrip = [] {
    const char* v = std::getenv("LONGALIGN_FUZZ_ROUNDTRIP");
    return v && std::string_view(v) == "1";
  }();
  const bool require_data = size % 2 == 1;
  fuzz::expect_project_errors([&] {
    const TrainConfig cfg = load_train_config(path, {}, require_data);
    const std::string printed = to_yaml(cfg);
    if (!roundtrip) return;
    fuzz::write_bytes(again, printed);
    try {
      load_train_config(again, {}, require_data);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz: the printed config does not load again: %s\n---\n%s---\n", e.what(), printed.c_str());
      std::abort();
    }
  });
  return 0;
}
