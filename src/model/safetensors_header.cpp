// safetensors header parsing and validation, without torch (see safetensors_header.hpp). Every
// check here is what keeps SafetensorsFile::view from building a tensor over bytes that are not
// in the mapping, so nothing from the header is trusted: types, signs, products and ranges.
#include "longalign/model/safetensors_header.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "longalign/core/error.hpp"

using nlohmann::json;

namespace longalign::model {
namespace {

// A JSON integer >= 0 that fits in int64_t (shapes) or uint64_t (offsets); floats, negative
// numbers and anything else are refused rather than converted.
bool non_negative_integer(const json& v, uint64_t limit, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
  } else if (v.is_number_integer()) {
    int64_t x = v.get<int64_t>();
    if (x < 0) return false;
    out = uint64_t(x);
  } else {
    return false;
  }
  return out <= limit;
}

}  // namespace

const std::vector<std::pair<std::string, size_t>>& safetensors_dtypes() {
  static const std::vector<std::pair<std::string, size_t>> t = {
      {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U8", 1},  {"BOOL", 1}};
  return t;
}

size_t safetensors_element_size(std::string_view dtype) {
  for (const auto& [n, size] : safetensors_dtypes())
    if (n == dtype) return size;
  return 0;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, uint64_t size, const std::string& name) {
  auto bad = [&](const std::string& why) { return RuntimeError("safetensors file " + name + ": " + why); };
  if (size < 8) throw bad("too short for a header");
  uint64_t n;
  std::memcpy(&n, bytes, 8);
  if (n > size - 8) throw bad("header length " + std::to_string(n) + " exceeds the file");
  SafetensorsHeader out;
  out.data_start = 8 + n;
  out.data_size = size - out.data_start;
  json h = json::parse(reinterpret_cast<const char*>(bytes) + 8, reinterpret_cast<const char*>(bytes) + 8 + n,
                       nullptr, false);
  if (!h.is_object()) throw bad("header is not a JSON object");
  for (auto& [key, v] : h.items()) {
    if (key == "__metadata__") {
      if (!v.is_object()) throw bad("__metadata__ is not a JSON object");
      for (auto& [k, m] : v.items())
        if (m.is_string()) out.metadata[k] = m.get<std::string>();
      continue;
    }
    try {
      SafetensorsEntry e;
      e.name = key;
      e.dtype = v.at("dtype").get<std::string>();
      e.element_size = safetensors_element_size(e.dtype);
      if (e.element_size == 0) throw bad("tensor " + key + " has unsupported dtype " + e.dtype);
      const json& shape = v.at("shape");
      if (!shape.is_array()) throw bad("tensor " + key + " has a bad shape (not an array of sizes)");
      // The element count is built in unsigned arithmetic with an overflow check: a product that
      // wraps could otherwise match a small byte range and let a view run past the file.
      uint64_t numel = 1;
      bool overflow = false;
      for (const auto& d : shape) {
        uint64_t x;
        if (!non_negative_integer(d, uint64_t(INT64_MAX), x))
          throw bad("tensor " + key + " has a bad shape (sizes must be integers >= 0)");
        e.shape.push_back(int64_t(x));
        overflow = overflow || __builtin_mul_overflow(numel, x, &numel);
      }
      const json& off = v.at("data_offsets");
      uint64_t b = 0, en = 0;
      if (!off.is_array() || off.size() != 2 || !non_negative_integer(off[0], UINT64_MAX, b) ||
          !non_negative_integer(off[1], UINT64_MAX, en) || b > en || en > out.data_size)
        throw bad("tensor " + key + " has bad offsets");
      e.begin = b;
      e.end = en;
      uint64_t nbytes = 0;
      if (overflow || numel > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, uint64_t(e.element_size), &nbytes) ||
          nbytes != e.end - e.begin)
        throw bad("tensor " + key + " size does not match its shape");
      out.entries.push_back(std::move(e));
    } catch (const json::exception& ex) {
      throw bad("tensor " + key + ": " + ex.what());
    }
  }
  // Two tensors over the same bytes would alias: a write through one view (or a reader that
  // trusts the ranges to be disjoint) would see the other change. Empty ranges hold no bytes.
  std::vector<const SafetensorsEntry*> by_begin;
  for (const auto& e : out.entries)
    if (e.end > e.begin) by_begin.push_back(&e);
  std::sort(by_begin.begin(), by_begin.end(), [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_begin.size(); ++i)
    if (by_begin[i]->begin < by_begin[i - 1]->end)
      throw bad("tensors " + by_begin[i - 1]->name + " and " + by_begin[i]->name + " overlap");
  return out;
}

}  // namespace longalign::model
