// libFuzzer target: the shape check of a .bin checkpoint's pickle (src/model/pickle_shape.cpp),
// which stands between an untrusted data.pkl and LibTorch's unpickler. The input is the pickle.
//
// A finding is any crash, sanitizer report or hang (the check must stay linear in the input, and
// never recurse with the input's nesting), or an exception other than RuntimeError / UsageError.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"
#include "longalign/model/pickle_shape.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  longalign::fuzz::expect_project_errors([&] { longalign::model::check_pickle_shape(data, size, "fuzz.pkl"); });
  return 0;
}
