// CRC-32C against the standard check value and its incremental property.
#include <gtest/gtest.h>

#include <string>

#include "longalign/core/crc32c.hpp"

using longalign::crc32c;

TEST(Crc32c, StandardCheckValue) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32c(s.data(), s.size()), 0xE3069283u);  // the catalogued CRC-32C check value
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, IncrementalEqualsWhole) {
  const std::string a = "hello, ", b = "world";
  EXPECT_EQ(crc32c(b.data(), b.size(), crc32c(a.data(), a.size())), crc32c((a + b).data(), a.size() + b.size()));
}
