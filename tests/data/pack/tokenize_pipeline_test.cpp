// The parallel pipeline gives the same dataset, in input order, for any thread count; it
// matches a direct single-record encoding (the oracle) record by record.
#include <gtest/gtest.h>

#include "longalign/data/instruct/synth.hpp"
#include "longalign/data/pack/tokenize_pipeline.hpp"
#include "test_tokenizers.hpp"

using namespace longalign;
using namespace longalign::data;

TEST(TokenizePipeline, ThreadCountDoesNotChangeTheOutputAndOrderIsKept) {
  fixture::TempDir tmp;
  SynthOptions so;
  so.num = 700;  // several chunks
  so.min_words = 10;
  so.max_words = 80;
  write_synth(so, tmp / "in.jsonl");
  auto tok = load_sentencepiece(fixture::trained_tokenizer());
  for (int threads : {1, 3}) {
    auto dir = tmp / ("t" + std::to_string(threads));
    std::filesystem::create_directories(dir);
    TokenizeOptions o;
    o.inputs = {tmp / "in.jsonl"};
    o.threads = threads;
    o.progress = false;
    DatasetWriter w(dir, {});
    PackStats st;
    tokenize_to_dataset(o, tok.get(), w, st);
    w.finish();
    EXPECT_EQ(st.sequences, 700u);
  }
  EXPECT_EQ(fixture::read_text(tmp / "t1" / "tokens.bin"), fixture::read_text(tmp / "t3" / "tokens.bin"));
  EXPECT_EQ(fixture::read_text(tmp / "t1" / "targets.bin"), fixture::read_text(tmp / "t3" / "targets.bin"));

  // Oracle: record k of the dataset equals encoding line k directly.
  auto ds = TokenDataset::open(tmp / "t3");
  std::ifstream in(tmp / "in.jsonl");
  std::string line;
  for (size_t k = 0; std::getline(in, line); ++k) {
    auto p = parse_record(line, InputFormat::longalign);
    auto rec = encode_segments(render_template(p.conv, Template::llama2), *tok);
    auto s = ds[k];
    ASSERT_EQ(std::vector<int32_t>(s.ids, s.ids + s.length), rec.ids) << "record " << k;
  }
}
