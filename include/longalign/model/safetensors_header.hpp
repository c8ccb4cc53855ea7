// The torch-free half of the safetensors reader: the 8-byte header length and the JSON header,
// validated against the data that follows. Kept apart from safetensors.hpp so that the header
// parser can be fuzzed and tested without linking LibTorch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace longalign::model {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;          // one of safetensors_dtypes()
  size_t element_size = 0;    // bytes per element of `dtype`
  std::vector<int64_t> shape; // every dimension >= 0
  uint64_t begin = 0, end = 0;  // byte range, relative to the end of the header
};

struct SafetensorsHeader {
  uint64_t data_start = 0;               // 8 + header length: where offset 0 lies in the file
  uint64_t data_size = 0;                // bytes after the header
  std::vector<SafetensorsEntry> entries; // in the header's key order
  std::map<std::string, std::string> metadata;  // "__metadata__"; values that are not strings are skipped
};

// The dtypes the reader supports, with their element sizes.
const std::vector<std::pair<std::string, size_t>>& safetensors_dtypes();
// 0 when `dtype` is not supported.
size_t safetensors_element_size(std::string_view dtype);

// Parses the header of a safetensors file whose first `size` bytes are at `bytes` (the whole
// file: the data sizes are checked against it). RuntimeError "safetensors file NAME: why" on a
// short file, a header length beyond the file, a header that is not a JSON object, an entry
// that is not {dtype, shape, data_offsets}, an unsupported dtype, offsets out of range or
// overlapping another tensor's, or a shape whose element count overflows or disagrees with the
// byte size.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, uint64_t size, const std::string& name);

}  // namespace longalign::model
