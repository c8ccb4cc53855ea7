// The rule for files a directory names (contained_file), the bounded non-blocking reader and
// the JSON depth check: hostile names, FIFOs, devices and deep nesting are refused quickly.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <string>

#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "test_util.hpp"

using namespace longalign;
namespace fs = std::filesystem;

namespace {

std::string refusal(const fs::path& dir, const std::string& name) {
  return fixture::error_of<RuntimeError>([&] { contained_file(dir, name, "test index", 1 << 20); });
}

}  // namespace

TEST(ContainedFile, RefusesNamesOutsideTheDirectoryAndNonRegularFiles) {
  fixture::TempDir tmp;
  fs::create_directories(tmp / "d" / "sub");
  fixture::write_text(tmp / "d" / "sub" / "ok.json", "{}");
  fixture::write_text(tmp / "outside.json", "{}");
  EXPECT_EQ(contained_file(tmp / "d", "sub/ok.json", "x", 100), tmp / "d" / "sub" / "ok.json");
  EXPECT_NE(refusal(tmp / "d", "../outside.json").find("'..'"), std::string::npos);
  EXPECT_NE(refusal(tmp / "d", "sub/../../outside.json").find("'..'"), std::string::npos);
  EXPECT_NE(refusal(tmp / "d", (tmp / "outside.json").string()).find("absolute path"), std::string::npos);
  EXPECT_NE(refusal(tmp / "d", "").find("empty path"), std::string::npos);
  EXPECT_NE(refusal(tmp / "d", "nope.json").find("does not exist"), std::string::npos);
  fs::create_symlink(tmp / "outside.json", tmp / "d" / "link.json");
  EXPECT_NE(refusal(tmp / "d", "link.json").find("outside it"), std::string::npos);
  fs::create_symlink("/dev/zero", tmp / "d" / "zero");
  EXPECT_NE(refusal(tmp / "d", "zero").find("outside it"), std::string::npos);
  fs::create_symlink("nowhere", tmp / "d" / "dangling");
  EXPECT_NE(refusal(tmp / "d", "dangling").find("leads nowhere"), std::string::npos);
  ASSERT_EQ(::mkfifo((tmp / "d" / "fifo").c_str(), 0644), 0);
  EXPECT_NE(refusal(tmp / "d", "fifo").find("a FIFO"), std::string::npos);
  EXPECT_NE(refusal(tmp / "d", "sub").find("a directory"), std::string::npos);
  fixture::write_text(tmp / "d" / "big", std::string(2 << 20, 'x'));
  EXPECT_NE(refusal(tmp / "d", "big").find("more than the 1 MiB"), std::string::npos);
  // A symlink inside the directory to a file inside it is fine.
  fs::create_symlink("sub/ok.json", tmp / "d" / "inner.json");
  EXPECT_NO_THROW(contained_file(tmp / "d", "inner.json", "x", 100));
  EXPECT_FALSE(contained_file_if_present(tmp / "d", "absent.json", "x", 100));
}

TEST(ReadFile, NeverBlocksOnAFifoAndHonoursItsBound) {
  fixture::TempDir tmp;
  ASSERT_EQ(::mkfifo((tmp / "fifo").c_str(), 0644), 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(read_file(tmp / "fifo"));
  EXPECT_FALSE(read_file("/dev/zero"));
  try {
    read_regular_file(tmp / "fifo", "side file", 100);
    ADD_FAILURE();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("a FIFO"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  fixture::write_text(tmp / "f", "0123456789");
  EXPECT_EQ(read_file(tmp / "f", 10).value_or(""), "0123456789");
  EXPECT_FALSE(read_file(tmp / "f", 9));
  EXPECT_THROW(read_regular_file(tmp / "f", "side file", 9), RuntimeError);
}

TEST(JsonDepth, DeepNestingIsRefusedStringsAreNot) {
  EXPECT_NO_THROW(check_json_depth(R"({"a": [[1], {"b": "[[[[[[[[[["}]})", "x", 3));
  EXPECT_NO_THROW(check_json_depth(R"(["\"[[[[", "\\"])", "x", 1));
  EXPECT_THROW(check_json_depth("[[[[1]]]]", "x", 3), RuntimeError);
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  try {
    check_json_depth(deep, "config.json");
    ADD_FAILURE();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: JSON nested deeper than 128 levels (at byte 128)"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(truncate_for_message(std::string(500, 'a'), 10), "aaaaaaaaaa... (490 more bytes)");
}
