// sentencepiece integration: a trained model round-trips text, keeps template markers whole,
// and bad model files are clear errors.
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
#include "longalign/data/chat/chat_template.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
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

// Older chatglm3-6b tokenizer_config.json files list no added tokens: tokenization_chatglm.py
// numbers [MASK] [gMASK] [sMASK] sop eop <|system|> <|user|> <|assistant|> <|observation|> from
// the sentencepiece vocabulary's size on. Worked out by hand for a vocabulary of n pieces: n,
// n+1, ..., n+8. That tokenizer leaves them in text as text (encode_special_tokens is off).
TEST(Tokenizer, ChatGlmTokenizerWithoutAddedTokensNumbersItsSpecialTokensAfterTheVocabulary) {
  fixture::TempDir tmp;
  std::filesystem::copy_file(fixture::trained_tokenizer(), tmp / "tokenizer.model");
  auto plain = load_sentencepiece(tmp / "tokenizer.model");
  const int32_t n = plain->vocab_size();
  fixture::write_text(tmp / "tokenizer_config.json",
                      R"({"name_or_path": "THUDM/chatglm3-6b", "remove_space": false, "do_lower_case": false,
                          "tokenizer_class": "ChatGLMTokenizer",
                          "auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", null]}})");
  auto tok = load_sentencepiece(tmp / "tokenizer.model");
  const std::pair<const char*, int32_t> expect[] = {
      {"[MASK]", n},         {"[gMASK]", n + 1},  {"[sMASK]", n + 2},        {"sop", n + 3},
      {"eop", n + 4},        {"<|system|>", n + 5}, {"<|user|>", n + 6}, {"<|assistant|>", n + 7},
      {"<|observation|>", n + 8}};
  for (const auto& [token, id] : expect) {
    EXPECT_EQ(tok->piece_id(token), id) << token;
    EXPECT_EQ(tok->decode({id}), token) << token;
  }
  EXPECT_EQ(tok->vocab_size(), n + 9);
  EXPECT_NE(tok->checksum(), plain->checksum());  // the ids depend on the config too
  // Text is encoded as text, "sop" inside a word and "<|user|>" alike.
  for (const char* text : {"Aesop's fables", "say <|user|> here"}) EXPECT_EQ(tok->encode(text), plain->encode(text));
  // The chatglm3 template starts with [gMASK] and then <sop>: the trained tokenizer has a piece of
  // its own spelled "<sop>", which the template prefers to ChatGLM3's "sop" (a real ChatGLM3
  // model has none; chat_template_test covers that spelling).
  TokenizedRecord r = encode_segments(render_template(Conversation{"", {{"Q", "A"}}}, Template::chatglm3), *tok);
  ASSERT_GE(r.ids.size(), 2u);
  EXPECT_EQ(r.ids[0], n + 1);
  EXPECT_EQ(r.ids[1], plain->piece_id("<sop>"));

  // Another class, or a config that lists its added tokens, gets none of these.
  fixture::write_text(tmp / "tokenizer_config.json", R"({"tokenizer_class": "LlamaTokenizer"})");
  EXPECT_EQ(load_sentencepiece(tmp / "tokenizer.model")->piece_id("sop"), plain->piece_id("sop"));
  fixture::write_text(tmp / "tokenizer_config.json",
                      R"({"tokenizer_class": "ChatGLMTokenizer", "added_tokens_decoder": {")" + std::to_string(n + 1) +
                          R"(": {"content": "[gMASK]"}}})");
  auto listed = load_sentencepiece(tmp / "tokenizer.model");
  EXPECT_EQ(listed->piece_id("[gMASK]"), n + 1);
  EXPECT_EQ(listed->vocab_size(), n + 2);
  EXPECT_EQ(listed->piece_id("<|observation|>"), -1);

  // A malformed class name is an error naming the file and the key.
  fixture::write_text(tmp / "tokenizer_config.json", R"({"tokenizer_class": 7})");
  try {
    load_sentencepiece(tmp / "tokenizer.model");
    FAIL() << "a non-string tokenizer_class was accepted";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: tokenizer_class"), std::string::npos) << e.what();
  }
}
