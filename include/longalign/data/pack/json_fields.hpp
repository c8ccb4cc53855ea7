// Typed reads of integer fields from files longalign wrote and later trusts (plan.json,
// header.json). nlohmann's get<int>() casts a float or an out-of-range number (undefined
// behaviour, or silent truncation: "version": 2.5 read as 2); these refuse them instead.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace longalign::data {

// `v` as T; std::runtime_error naming `what` when it is not an integer that T holds.
template <typename T>
T json_integer(const nlohmann::json& v, const std::string& what) {
  const auto bad = [&] { return std::runtime_error(what + " is not an integer in range: " + v.dump().substr(0, 40)); };
  if (!v.is_number_integer()) throw bad();
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<T>::max())) throw bad();
    return T(u);
  }
  const int64_t i = v.get<int64_t>();
  if (i < int64_t(std::numeric_limits<T>::min()) || (i > 0 && uint64_t(i) > uint64_t(std::numeric_limits<T>::max())))
    throw bad();
  return T(i);
}

template <typename T>
T json_integer_at(const nlohmann::json& obj, const std::string& key) {
  return json_integer<T>(obj.at(key), key);
}

}  // namespace longalign::data
