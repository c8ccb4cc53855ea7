// libFuzzer target: the safetensors header parser (src/model/safetensors_header.cpp), the
// torch-free part of SafetensorsFile. The input is a whole .safetensors file: u64 header length,
// JSON header, data.
//
// A finding is any crash, sanitizer report or hang; an exception other than
// longalign::RuntimeError / UsageError; or an accepted header that SafetensorsFile::view could
// not safely turn into tensors: a range outside the data, two overlapping non-empty ranges, a
// negative dimension, an element count whose byte size differs from the range, or an
// unsupported dtype.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"
#include "longalign/model/safetensors_header.hpp"

using namespace longalign;
using namespace longalign::model;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_project_errors([&] {
    const SafetensorsHeader h = parse_safetensors_header(data, size, "fuzz.safetensors");
    LONGALIGN_FUZZ_CHECK(h.data_start >= 8 && h.data_start <= size);
    LONGALIGN_FUZZ_CHECK(h.data_start + h.data_size == size);
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const auto& e : h.entries) {
      LONGALIGN_FUZZ_CHECK(e.element_size > 0 && e.element_size == safetensors_element_size(e.dtype));
      LONGALIGN_FUZZ_CHECK(e.begin <= e.end && e.end <= h.data_size);
      // Recomputed in 128 bits so that the check cannot share an overflow with the parser.
      unsigned __int128 bytes = e.element_size;
      for (int64_t d : e.shape) {
        LONGALIGN_FUZZ_CHECK(d >= 0);
        bytes *= uint64_t(d);
        if (bytes > (unsigned __int128)UINT64_MAX) bytes = (unsigned __int128)UINT64_MAX + 1;
      }
      LONGALIGN_FUZZ_CHECK(bytes == e.end - e.begin);
      if (e.end > e.begin) ranges.emplace_back(e.begin, e.end);
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i) LONGALIGN_FUZZ_CHECK(ranges[i].first >= ranges[i - 1].second);
  });
  return 0;
}
