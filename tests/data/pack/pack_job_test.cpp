// End-to-end `pack` behaviour on files: outputs, stats, every bad-input class, and the promise
// that a failure leaves no partial output.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "longalign/core/error.hpp"
#include "longalign/data/pack/batch.hpp"
#include "longalign/data/chat/chat_template.hpp"
#include "longalign/data/pack/pack_job.hpp"
#include "longalign/data/pack/pack_reader.hpp"
#include "longalign/data/pack/token_dataset.hpp"
#include "test_tokenizers.hpp"

using namespace longalign;
using namespace longalign::data;
namespace fs = std::filesystem;

namespace {

const char* kGood = R"({"messages":[{"role":"user","content":"What is 2 + 2?"},{"role":"assistant","content":"4"}]})";

PackOptions options(const fixture::TempDir& tmp, const std::string& jsonl) {
  fixture::write_text(tmp / "in.jsonl", jsonl);
  PackOptions o;
  o.tokenize.inputs = {tmp / "in.jsonl"};
  o.tokenize.progress = false;
  o.tokenizer = fixture::trained_tokenizer();
  o.output = tmp / "out";
  o.plan.max_tokens = 256;
  return o;
}

std::string error_of(const PackOptions& o) {
  try {
    run_pack(o);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

size_t entries(const fs::path& dir) { return std::distance(fs::directory_iterator(dir), fs::directory_iterator()); }

}  // namespace

TEST(PackJob, WritesAReusableSelfContainedDirectory) {
  fixture::TempDir tmp;
  auto o = options(tmp, std::string(kGood) + "\n\n" + kGood + "\n");
  PackStats st = run_pack(o);
  EXPECT_EQ(st.records, 2u);
  EXPECT_EQ(st.sequences, 2u);
  for (const char* f : {"header.json", "tokens.bin", "targets.bin", "index.bin", "plan.json", "stats.json",
                        "pack_config.json", "tokenizer.model"})
    EXPECT_TRUE(fs::exists(tmp / "out" / f)) << f;
  auto ds = TokenDataset::open(tmp / "out");
  EXPECT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.info().tokenizer_checksum, file_checksum(fixture::trained_tokenizer()));
  auto stats = nlohmann::json::parse(fixture::read_text(tmp / "out" / "stats.json"));
  EXPECT_EQ(stats["sequences"], 2);
  EXPECT_EQ(stats["tokens"], ds.info().num_tokens);
  EXPECT_EQ(entries(tmp.path), 2u);  // in.jsonl and out: no temp leftovers
}

TEST(PackJob, MalformedLineIsAnErrorNamingFileAndLineAndLeavesNothing) {
  fixture::TempDir tmp;
  std::string many;
  for (int i = 0; i < 600; ++i) many += std::string(kGood) + "\n";  // several chunks written before the failure
  auto o = options(tmp, many + "{\"messages\": [\n" + kGood + "\n");
  std::string err = error_of(o);
  EXPECT_NE(err.find("in.jsonl:601"), std::string::npos) << err;
  EXPECT_NE(err.find("--skip-invalid"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  EXPECT_EQ(entries(tmp.path), 1u);  // only the input: the staged output was removed
}

TEST(PackJob, SkipInvalidCountsAndReportsTheLines) {
  fixture::TempDir tmp;
  auto o = options(tmp, std::string(kGood) + "\nnot json\n" + "{\"messages\":\"\xC3\x28\"}\n" + kGood + "\n");
  o.tokenize.skip_invalid = true;
  PackStats st = run_pack(o);
  EXPECT_EQ(st.sequences, 2u);
  EXPECT_EQ(st.invalid, 2u);
  EXPECT_EQ(st.dropped["malformed_json"], 1u);
  EXPECT_EQ(st.dropped["invalid_utf8"], 1u);
  ASSERT_EQ(st.invalid_examples.size(), 2u);
  EXPECT_NE(st.invalid_examples[0].find("in.jsonl:2"), std::string::npos);
  EXPECT_NE(st.invalid_examples[1].find("in.jsonl:3"), std::string::npos);
}

TEST(PackJob, InvalidUtf8IsAnErrorNamingTheLine) {
  fixture::TempDir tmp;
  auto o = options(tmp, std::string(kGood) + "\n{\"messages\":\"\xFF\"}\n");
  std::string err = error_of(o);
  EXPECT_NE(err.find("in.jsonl:2"), std::string::npos) << err;
  EXPECT_NE(err.find("UTF-8"), std::string::npos) << err;
}

TEST(PackJob, UnusableRecordsAreSkippedAndCountedByReason) {
  fixture::TempDir tmp;
  auto o = options(tmp, std::string(kGood) + "\n" +
                            R"({"messages":[{"content":"x"},{"role":"assistant","content":"a"}]})" "\n"
                            R"({"messages":[]})" "\n"
                            R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":""}]})" "\n");
  PackStats st = run_pack(o);
  EXPECT_EQ(st.sequences, 1u);
  EXPECT_EQ(st.dropped["missing_field"], 1u);
  EXPECT_EQ(st.dropped["empty_conversation"], 1u);
  EXPECT_EQ(st.dropped["empty_assistant_turn"], 1u);
  EXPECT_EQ(st.dropped_total(), 3u);
}

TEST(PackJob, PreTokenizedInputNeedsNoTokenizerAndNoTargetIsDropped) {
  fixture::TempDir tmp;
  auto o = options(tmp, "{\"input_ids\":[1,5,6,7]}\n{\"input_ids\":[1,5,6],\"labels\":[-100,-100,-100]}\n");
  o.tokenizer.clear();
  PackStats st = run_pack(o);
  EXPECT_EQ(st.sequences, 1u);
  EXPECT_EQ(st.dropped["no_target"], 1u);
  EXPECT_EQ(st.target_tokens, 3u);
}

TEST(PackJob, ReferenceLabelsSurvivePackingAndTruncation) {
  fixture::TempDir tmp;
  auto o = options(tmp, R"({"input_ids":[1,10,11,20,21,22,23],"labels":[-100,-100,11,2,21,-100,2]})" "\n");
  o.tokenizer.clear();
  o.plan.max_tokens = 6;  // truncation cuts the second relabel (position 6) away
  run_pack(o);
  auto ds = TokenDataset::open(o.output);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds.info().num_relabels, 1u);
  PlanUnit u;
  u.seqs = {0};
  u.weights = {1};
  Batch b = make_batch(ds, u, Strategy::pack);
  EXPECT_EQ(b.labels, (std::vector<int32_t>{-100, 11, 2, 21, -100, -100}));
}

TEST(PackJob, OverflowPolicies) {
  fixture::TempDir tmp;
  std::string long_answer(2000, 'z');
  std::string rec = R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":")" + long_answer + "\"}]}";
  auto o = options(tmp, std::string(kGood) + "\n" + rec + "\n");
  PackStats t = run_pack(o);
  EXPECT_EQ(t.truncated, 1u);
  EXPECT_EQ(t.sequences, 2u);
  o.overwrite = true;
  o.tokenize.overflow = Overflow::drop;
  PackStats d = run_pack(o);
  EXPECT_EQ(d.sequences, 1u);
  EXPECT_EQ(d.dropped["too_long"], 1u);
  o.tokenize.overflow = Overflow::error;
  std::string err = error_of(o);
  EXPECT_NE(err.find("in.jsonl:2"), std::string::npos) << err;
}

TEST(PackJob, ConfigurationErrors) {
  fixture::TempDir tmp;
  auto o = options(tmp, std::string(kGood) + "\n");
  o.plan.max_tokens = 0;
  EXPECT_THROW(run_pack(o), UsageError);
  o.plan.max_tokens = 256;
  o.tokenizer = tmp / "missing.model";
  EXPECT_THROW(run_pack(o), UsageError);
  fixture::write_text(tmp / "corrupt.model", "garbage");
  o.tokenizer = tmp / "corrupt.model";
  EXPECT_THROW(run_pack(o), RuntimeError);
  o.tokenizer = fixture::trained_tokenizer();
  run_pack(o);
  std::string err = error_of(o);
  EXPECT_NE(err.find("--overwrite"), std::string::npos) << err;  // existing output refused
  o.overwrite = true;
  EXPECT_NO_THROW(run_pack(o));
}

TEST(PackJob, MixedFormatsAcrossFilesAreDetectedPerFile) {
  fixture::TempDir tmp;
  auto o = options(tmp, R"({"conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"hello"}]})" "\n");
  fixture::write_text(tmp / "b.jsonl", R"({"instruction":"say","output":"ok"})" "\n");
  o.tokenize.inputs.push_back(tmp / "b.jsonl");
  EXPECT_EQ(run_pack(o).sequences, 2u);
  fixture::write_text(tmp / "c.jsonl", R"({"text":"what am I"})" "\n");
  o.tokenize.inputs = {tmp / "c.jsonl"};
  o.overwrite = true;
  std::string err = error_of(o);
  EXPECT_NE(err.find("c.jsonl:1"), std::string::npos) << err;
  EXPECT_NE(err.find("--format"), std::string::npos) << err;
}

TEST(PackJob, DataConfigSectionWithKeyValidation) {
  fixture::TempDir tmp;
  fixture::write_text(tmp / "cfg.yaml", "data:\n  strategy: sort\n  max_tokens: 1024\n  inputs: [a.jsonl]\n");
  PackOptions o;
  apply_data_config(tmp / "cfg.yaml", o);
  EXPECT_EQ(o.plan.strategy, Strategy::sort);
  EXPECT_EQ(o.plan.max_tokens, 1024);
  EXPECT_EQ(o.tokenize.inputs.at(0), tmp / "a.jsonl");  // relative to the config file
  fixture::write_text(tmp / "bad.yaml", "data:\n  max_token: 10\n");
  try {
    apply_data_config(tmp / "bad.yaml", o);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean data.max_tokens"), std::string::npos) << e.what();
  }
  fixture::write_text(tmp / "type.yaml", "data:\n  max_tokens: lots\n");
  EXPECT_THROW(apply_data_config(tmp / "type.yaml", o), UsageError);
}

namespace {
void flip_byte(const fs::path& f, uint64_t at) {
  std::fstream s(f, std::ios::in | std::ios::out | std::ios::binary);
  s.seekg(std::streamoff(at));
  char c = 0;
  s.read(&c, 1);
  c = char(c ^ 0x01);
  s.seekp(std::streamoff(at));
  s.write(&c, 1);
}

std::string open_error(const fs::path& dir, Verify level) {
  try {
    open_pack(dir, level);
  } catch (const RuntimeError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(PackJob, EveryFileIsCheckedWhenThePackIsOpened) {
  fixture::TempDir tmp;
  auto o = options(tmp, std::string(kGood) + "\n" + kGood + "\n" + kGood + "\n");
  run_pack(o);
  const fs::path out = tmp / "out";
  ASSERT_EQ(open_error(out, Verify::full), "");
  auto manifest = nlohmann::json::parse(fixture::read_text(out / "checksums.json"));
  for (const char* f : {"header.json", "tokens.bin", "targets.bin", "index.bin", "plan.json", "stats.json",
                        "pack_config.json", "tokenizer.model"})
    EXPECT_TRUE(manifest["files"].contains(f)) << f;

  // A flipped token passes the cheap check (sizes only for the token files) but not the full one.
  flip_byte(out / "tokens.bin", 5);
  EXPECT_EQ(open_error(out, Verify::cheap), "");
  EXPECT_NE(open_error(out, Verify::full).find("tokens.bin fails its CRC-32C check"), std::string::npos);
  flip_byte(out / "tokens.bin", 5);
  flip_byte(out / "plan.json", 20);  // small files are always checked
  EXPECT_NE(open_error(out, Verify::cheap).find("plan.json fails its CRC-32C check"), std::string::npos);
  flip_byte(out / "plan.json", 20);
  fs::resize_file(out / "index.bin", fs::file_size(out / "index.bin") - 4);
  EXPECT_NE(open_error(out, Verify::cheap).find("index.bin has"), std::string::npos);
  fs::remove(out / "checksums.json");
  EXPECT_NE(open_error(out, Verify::cheap).find("has no checksums.json"), std::string::npos);
}

TEST(PackJob, AConsistentlyRewrittenPlanIsStillValidatedAgainstTheData) {
  fixture::TempDir tmp;
  auto o = options(tmp, std::string(kGood) + "\n" + kGood + "\n");
  run_pack(o);
  const fs::path out = tmp / "out";
  Plan p = load_plan(out / "plan.json");
  p.steps[0].units[0].seqs[0] = 7;  // out of range; the checksums are refreshed as a forger would
  save_plan(p, out / "plan.json");
  write_pack_manifest(out);
  EXPECT_NE(open_error(out, Verify::full).find("names sequence 7 but the dataset has 2"), std::string::npos);
}

TEST(PackJob, HugeRecordsAreEncodedOnlyAsFarAsMaxTokensNeeds) {
  fixture::ByteTokenizer tok;  // one id per byte: lengths are exact by hand
  std::string big;
  for (int i = 0; i < 200000; ++i) big += "word ";
  std::vector<Segment> segs = {{Segment::Kind::bos, "", false}, {Segment::Kind::text, big, false},
                               {Segment::Kind::text, "answer", true}};
  TokenizedRecord all = encode_segments(segs, tok);
  ASSERT_EQ(all.ids.size(), 1 + big.size() + 6);
  TokenizedRecord cut = encode_segments(segs, tok, 1000);
  EXPECT_GT(cut.ids.size(), 1000u);                    // enough to tell it is too long
  EXPECT_LE(cut.ids.size(), 1000u * kBytesPerTokenBound + 2);  // and not the whole record
  EXPECT_TRUE(std::equal(cut.ids.begin(), cut.ids.end(), all.ids.begin()));
  TokenizedRecord fits = encode_segments(segs, tok, all.ids.size());
  EXPECT_EQ(fits.ids, all.ids);  // a record that fits is encoded whole
  EXPECT_EQ(fits.target, all.target);
}
