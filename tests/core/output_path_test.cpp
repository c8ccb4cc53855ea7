// Up-front path checks and range wording: outputs never replace inputs or land in the wrong
// kind of file, inputs are never opened when they are not regular files, and limits read well.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/option_check.hpp"
#include "longalign/core/output_path.hpp"
#include "test_util.hpp"

using namespace longalign;
namespace fs = std::filesystem;

namespace {

std::string usage_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(OutputPath, RefusesTheWrongKindOfPath) {
  fixture::TempDir tmp;
  fs::create_directory(tmp / "dir");
  fixture::write_text(tmp / "file", "x");
  EXPECT_NE(usage_error([&] { check_output_path(tmp / "dir", OutputKind::file, "--output"); }).find("is a directory"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { check_output_path(tmp / "file", OutputKind::dir, "--output"); }).find("not a directory"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { check_output_path(tmp / "file" / "x", OutputKind::file, "--output"); }).find("not a directory"),
            std::string::npos);
  EXPECT_EQ(usage_error([&] { check_output_path(tmp / "new" / "x", OutputKind::file, "--output"); }), "");
}

TEST(OutputPath, NeverAnInputNorADirectoryHoldingOne) {
  fixture::TempDir tmp;
  fs::create_directory(tmp / "d");
  fixture::write_text(tmp / "d" / "in.jsonl", "x");
  const fs::path in = tmp / "d" / "in.jsonl";
  EXPECT_NE(usage_error([&] { check_output_path(in, OutputKind::file, "-o", {in}); }).find("is also an input"),
            std::string::npos);
  const fs::path dotted = tmp / "d" / "." / "in.jsonl";
  EXPECT_NE(usage_error([&] { check_output_path(dotted, OutputKind::file, "-o", {in}); }).find("is also an input"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { check_output_path(tmp / "d", OutputKind::replaced_dir, "-o", {in}); }).find("contains the input"),
            std::string::npos);
  EXPECT_EQ(usage_error([&] { check_output_path(tmp / "d", OutputKind::dir, "-o", {in}); }), "");  // filled, not replaced
  EXPECT_EQ(usage_error([&] { check_output_path(tmp / "dd", OutputKind::replaced_dir, "-o", {in}); }), "");
}

TEST(OutputPath, InputsMustBeRegularFiles) {
  fixture::TempDir tmp;
  ASSERT_EQ(::mkfifo((tmp / "fifo").c_str(), 0600), 0);
  EXPECT_NE(usage_error([&] { check_input_file(tmp / "fifo", "--input"); }).find("--input " + (tmp / "fifo").string() + " is a FIFO"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { check_input_file(tmp.path, "--input"); }).find("is a directory"), std::string::npos);
  EXPECT_NE(usage_error([&] { check_input_file(tmp / "nope", "--input"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(usage_error([&] { check_input_dir(tmp / "fifo", "--model"); }).find("not a directory"), std::string::npos);
}

TEST(AtomicFile, DevicesAreWrittenInPlaceAndAFullOneFails) {
  fixture::TempDir tmp;
  fs::create_symlink("/dev/full", tmp / "full");  // a link: a rename could only ever replace it
  try {
    write_file_atomic(tmp / "full", "data");
    FAIL() << "writing to /dev/full succeeded";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_symlink(tmp / "full"));
  ASSERT_EQ(::mkfifo((tmp / "fifo").c_str(), 0600), 0);
  EXPECT_THROW(write_file_atomic(tmp / "fifo", "data"), RuntimeError);  // nobody reads: fails, never blocks
  EXPECT_THROW(write_file_atomic(tmp.path, "data"), RuntimeError);
}

TEST(AtomicFile, WritingThroughASymlinkReplacesItsTarget) {
  fixture::TempDir tmp;
  fixture::write_text(tmp / "real", "old");
  fs::create_symlink(tmp / "real", tmp / "link");
  write_file_atomic(tmp / "link", "new");
  EXPECT_TRUE(fs::is_symlink(tmp / "link"));
  EXPECT_EQ(fixture::read_text(tmp / "real"), "new");
}

TEST(OptionCheck, LimitsReadLikeAPersonWroteThem) {
  EXPECT_EQ(range_text(1, 256), "1..256");
  EXPECT_EQ(range_text(0, 1, true), "> 0 and <= 1");
  EXPECT_EQ(range_text(0, 1e300), ">= 0");
  EXPECT_EQ(range_text(0, INFINITY, true), "> 0");
  EXPECT_EQ(format_number(1e30), "1e+30");
  EXPECT_EQ(format_number(double(INT64_MAX)), "9223372036854775807");
  EXPECT_EQ(format_number(NAN), "nan");
  EXPECT_EQ(out_of_range("train.lr", "5", range_text(0, 1, true)), "train.lr 5 is out of range: must be > 0 and <= 1");
}
