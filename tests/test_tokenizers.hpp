// Tokenizers for tests: a byte-level one whose output can be worked out by hand (one id per
// byte), and a small sentencepiece model trained once per test binary.
#pragma once
#include "longalign/data/instruct/synth.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "test_util.hpp"

namespace longalign::fixture {

// ids: 0 unk, 1 <s>, 2 </s>, 3 + byte, 259 [gMASK], 260 <sop>.
class ByteTokenizer final : public data::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(3 + c);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id == 1) s += "<s>";
      else if (id == 2) s += "</s>";
      else if (id == 259) s += "[gMASK]";
      else if (id == 260) s += "<sop>";
      else s += static_cast<char>(id - 3);
    }
    return s;
  }
  int32_t piece_id(std::string_view p) const override { return p == "[gMASK]" ? 259 : p == "<sop>" ? 260 : -1; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  int32_t vocab_size() const override { return 261; }
  std::string checksum() const override { return "bytes"; }
};


// A small sentencepiece model trained once per test binary on synthetic data.
inline const std::filesystem::path& trained_tokenizer() {
  static TempDir dir;
  static std::filesystem::path model = [] {
    data::SynthOptions so;
    so.num = 300;
    so.min_words = 50;
    so.max_words = 200;
    data::write_synth(so, dir / "corpus.jsonl");
    data::TokenizerTrainOptions to;
    to.vocab_size = 600;
    data::train_sentencepiece({dir / "corpus.jsonl"}, dir / "tok.model", to);
    return dir / "tok.model";
  }();
  return model;
}

}  // namespace longalign::fixture
