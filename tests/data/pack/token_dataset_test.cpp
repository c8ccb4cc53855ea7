// The on-disk dataset: exact round trip, and every kind of damage is reported, not read.
#include <gtest/gtest.h>

#include <fstream>

#include "longalign/core/error.hpp"
#include "longalign/data/pack/token_dataset.hpp"
#include "test_util.hpp"

using namespace longalign;
using namespace longalign::data;
namespace fs = std::filesystem;

namespace {

void write_dataset(const fs::path& dir) {
  fs::create_directories(dir);
  DatasetInfo info;
  info.template_name = "llama2";
  info.max_length = 16;
  info.vocab_size = 100;
  DatasetWriter w(dir, info);
  w.add({{1, 10, 11, 2}, {0, 0, 1, 1}});
  w.add({{1, 20, 2}, {0, 1, 1}});
  w.add({{1, 30, 31, 32, 33}, {0, 0, 0, 1, 0}});
  w.finish();
}

void patch(const fs::path& file, size_t offset, char value) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  f.put(value);
}

std::string open_error(const fs::path& dir) {
  try {
    TokenDataset::open(dir);
  } catch (const RuntimeError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TokenDataset, RoundTrip) {
  fixture::TempDir tmp;
  write_dataset(tmp.path);
  auto ds = TokenDataset::open(tmp.path);
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.info().num_tokens, 12u);
  EXPECT_EQ(ds.info().num_targets, 5u);
  EXPECT_EQ(ds.info().template_name, "llama2");
  auto s = ds[2];
  ASSERT_EQ(s.length, 5u);
  EXPECT_EQ(s.n_targets, 1u);
  EXPECT_EQ(std::vector<int32_t>(s.ids, s.ids + s.length), (std::vector<int32_t>{1, 30, 31, 32, 33}));
  EXPECT_EQ(std::vector<uint8_t>(s.target, s.target + s.length), (std::vector<uint8_t>{0, 0, 0, 1, 0}));
}

TEST(TokenDataset, TruncatedTokenFileIsCorruption) {
  fixture::TempDir tmp;
  write_dataset(tmp.path);
  fs::resize_file(tmp / "tokens.bin", 20);
  EXPECT_NE(open_error(tmp.path).find("tokens.bin"), std::string::npos);
}

TEST(TokenDataset, FlippedIndexByteFailsTheCrc) {
  fixture::TempDir tmp;
  write_dataset(tmp.path);
  patch(tmp / "index.bin", 17, 7);
  EXPECT_NE(open_error(tmp.path).find("CRC"), std::string::npos);
}

TEST(TokenDataset, VersionMismatchNamesBothVersions) {
  fixture::TempDir tmp;
  write_dataset(tmp.path);
  std::string h = fixture::read_text(tmp / "header.json");
  h.replace(h.find("\"version\": 2"), 12, "\"version\": 99");
  fixture::write_text(tmp / "header.json", h);
  std::string err = open_error(tmp.path);
  EXPECT_NE(err.find("version 99"), std::string::npos) << err;
  EXPECT_NE(err.find("version 2"), std::string::npos) << err;
}

TEST(TokenDataset, MissingHeaderIsNotADataset) {
  fixture::TempDir tmp;
  EXPECT_NE(open_error(tmp.path).find("header.json"), std::string::npos);
}

// Found by fuzzing: a count whose byte size wraps around 2^64 passed the size checks and an
// empty file's CRC (0) matched the default, so open() read through a null mapping.
TEST(TokenDataset, CountsThatWrapAroundAreCorruptionNotACrash) {
  fixture::TempDir tmp;
  for (const char* f : {"tokens.bin", "targets.bin", "index.bin", "relabel.bin"}) fixture::write_text(tmp / f, "");
  const std::string base = R"({"format":"longalign-tokens","version":2,"tokenizer_checksum":"","template":"",)"
                           R"("max_length":0,"vocab_size":0,"bos_id":0,"eos_id":0,"num_tokens":0,"num_targets":0,)";
  fixture::write_text(tmp / "header.json", base + R"("num_sequences":1152921504606846976})");
  EXPECT_THROW(TokenDataset::open(tmp.path), RuntimeError);
  fixture::write_text(tmp / "header.json", base + R"("num_sequences":0,"num_relabels":1152921504606846976})");
  EXPECT_THROW(TokenDataset::open(tmp.path), RuntimeError);
  fixture::write_text(tmp / "header.json", base + R"("num_sequences":0.5})");  // not cast to 0
  EXPECT_THROW(TokenDataset::open(tmp.path), RuntimeError);
}
