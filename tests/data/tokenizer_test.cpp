// sentencepiece integration: a trained model round-trips text, keeps template markers whole,
// and bad model files are clear errors.
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
#include "longalign/data/chat_template.hpp"
#include "longalign/data/tokenizer.hpp"
#include "test_tokenizers.hpp"

using namespace longalign;
using namespace longalign::data;

TEST(Tokenizer, TrainedModelRoundTripsAndHasLlamaSpecialIds) {
  auto tok = load_sentencepiece(fixture::trained_tokenizer());
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_GE(tok->vocab_size(), 300);
  const std::string text = "The river carries 12345 stories of the harbour; 问答 é";
  auto ids = tok->encode(text);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(tok->decode(ids), text);  // byte fallback covers unseen characters
  EXPECT_EQ(tok->checksum(), file_checksum(fixture::trained_tokenizer()));
}

TEST(Tokenizer, TemplateMarkersAreSinglePieces) {
  auto tok = load_sentencepiece(fixture::trained_tokenizer());
  for (const auto& m : template_marker_pieces()) {
    int32_t id = tok->piece_id(m);
    EXPECT_GE(id, 0) << m;
    auto ids = tok->encode("x" + m + "y");
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << m << " was split inside text";
  }
  EXPECT_EQ(tok->piece_id("definitely-not-a-piece"), -1);
}

TEST(Tokenizer, MissingModelIsUsageErrorCorruptModelIsRuntimeError) {
  fixture::TempDir tmp;
  EXPECT_THROW(load_sentencepiece(tmp / "nope.model"), UsageError);
  fixture::write_text(tmp / "bad.model", "this is not a protobuf");
  try {
    load_sentencepiece(tmp / "bad.model");
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.model"), std::string::npos);
  }
}

// ChatGLM3 numbers its special tokens after the sentencepiece vocabulary and lists them only in
// tokenizer_config.json's added_tokens_decoder; they must get exactly those ids.
TEST(Tokenizer, AddedTokensBeyondTheVocabularyComeFromTokenizerConfig) {
  fixture::TempDir tmp;
  std::filesystem::copy_file(fixture::trained_tokenizer(), tmp / "tokenizer.model");
  const int32_t n = load_sentencepiece(tmp / "tokenizer.model")->vocab_size();
  const std::string gmask = std::to_string(n + 1), sop = std::to_string(n + 3), user = std::to_string(n + 6);
  // "<sop>" here: the trained tokenizer has a <sop> piece of its own, which the chatglm3 template
  // would take before ChatGLM3's spelling "sop" (tested with a stand-in in chat_template_test).
  fixture::write_text(tmp / "tokenizer_config.json",
                      "{\"tokenizer_class\": \"ChatGLMTokenizer\", \"added_tokens_decoder\": {"
                      "\"0\": {\"content\": \"<unk>\", \"special\": true}, "
                      "\"" + gmask + "\": {\"content\": \"[gMASK]\", \"special\": true}, "
                      "\"" + sop + "\": {\"content\": \"<sop>\", \"special\": true}, "
                      "\"" + user + "\": {\"content\": \"<|user|>\", \"special\": true}}}");
  auto tok = load_sentencepiece(tmp / "tokenizer.model");
  EXPECT_EQ(tok->piece_id("[gMASK]"), n + 1);  // wins over the trained tokenizer's own [gMASK] piece
  EXPECT_EQ(tok->piece_id("<sop>"), n + 3);
  EXPECT_EQ(tok->piece_id("<|user|>"), n + 6);
  EXPECT_EQ(tok->piece_id("<unk>"), 0);
  EXPECT_EQ(tok->vocab_size(), n + 7);
  EXPECT_NE(tok->checksum(), file_checksum(tmp / "tokenizer.model"));  // the ids depend on the config too

  std::vector<int32_t> expect = tok->encode("river");
  expect.push_back(n + 6);
  for (int32_t id : tok->encode("harbour")) expect.push_back(id);
  expect.push_back(n + 1);
  expect.push_back(n + 6);
  auto ids = tok->encode("river<|user|>harbour[gMASK]<|user|>");
  EXPECT_EQ(ids, expect);
  EXPECT_EQ(tok->decode(ids), "river<|user|>harbour[gMASK]<|user|>");

  Conversation c{"", {{"Q", "A"}}};
  TokenizedRecord r = encode_segments(render_template(c, Template::chatglm3), *tok);
  ASSERT_GE(r.ids.size(), 2u);
  EXPECT_EQ(r.ids[0], n + 1);
  EXPECT_EQ(r.ids[1], n + 3);
}
