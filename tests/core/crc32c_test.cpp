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

TEST(Crc32c, AcceleratedMatchesTableAtEveryLengthAndAlignment) {
  std::string buf(300, '\0');
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = char((i * 131 + 7) & 0xFF);
  EXPECT_EQ(longalign::crc32c_portable("123456789", 9), 0xE3069283u);
  for (size_t off = 0; off < 9; ++off)
    for (size_t n = 0; n + off <= buf.size(); n += 7)
      ASSERT_EQ(crc32c(buf.data() + off, n, 0x1234u), longalign::crc32c_portable(buf.data() + off, n, 0x1234u))
          << "offset " << off << " length " << n;
}
