// sentencepiece integration: a trained model round-trips text, keeps template markers whole,
// and bad model files are clear errors.
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
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
