// tokenizer.json (byte-level BPE) on a tiny hand-written file whose ids can be worked out by
// hand: merges by rank, bytes outside every merge, added tokens, ignore_merges, the Llama-3
// split, NFC, BOS/EOS, and a clear error for each kind of malformed file. Parity with Hugging
// Face `tokenizers` on real-sized files is bpe_parity_test.sh.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <chrono>
#include <thread>

#include "longalign/core/error.hpp"
#include "longalign/data/tokenize/bpe_tokenizer.hpp"
#include "longalign/data/chat/chat_template.hpp"
#include "longalign/data/pack/pack_job.hpp"
#include "longalign/data/pack/pack_reader.hpp"
#include "longalign/data/tokenize/tokenizer_regex.hpp"
#include "test_util.hpp"

using namespace longalign;
using namespace longalign::data;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;

namespace {

// GPT-2's byte -> character map, written out independently of the implementation.
std::string byte_char(int b) {
  const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  int cp = b;
  if (!printable) {
    int n = 0;
    for (int x = 0; x < b; ++x)
      if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) ++n;
    cp = 0x100 + n;
  }
  std::string s;
  if (cp < 0x80) s += static_cast<char>(cp);
  else s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
  return s;
}

// Ids 0..255: the byte with that value (so unmerged text reads as its bytes). Then
//   256 Ġt  257 he  258 Ġthe  259 ll  260 ell  261 hell  262 hel (no merge makes it)
// ranked  Ġ t < h e < Ġt he < l l < e ll < he ll.  Added: 263 <|endoftext|> (special),
// 264 [MASK], 265 [MASK]ED.
json tiny() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  const char* merged[] = {"Ġt", "he", "Ġthe", "ll", "ell", "hell", "hel"};
  for (int i = 0; i < 7; ++i) vocab[merged[i]] = 256 + i;
  json added = json::array();
  auto add = [&](int id, const char* content, bool special) {
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", !special}, {"special", special}});
  };
  add(263, "<|endoftext|>", true);
  add(264, "[MASK]", false);
  add(265, "[MASK]ED", false);
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
          {"post_processor", {{"type", "ByteLevel"}, {"trim_offsets", false}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
            {"ignore_merges", false}, {"vocab", vocab},
            // Both spellings of a merge appear in real files.
            {"merges", json::array({"Ġ t", json::array({"h", "e"}), "Ġt he", "l l", json::array({"e", "ll"}), "he ll"})}}}};
}

const json kLlama3Split = {
    {"type", "Split"},
    {"pattern",
     {{"Regex",
       R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
    {"behavior", "Isolated"},
    {"invert", false}};

struct Files {
  fixture::TempDir dir;
  std::filesystem::path write(const json& j, const std::string& name = "tokenizer.json") {
    fixture::write_text(dir / name, j.dump());
    return dir / name;
  }
  std::unique_ptr<Tokenizer> load(const json& j) { return load_bpe_tokenizer(write(j)); }
};

// The message of the RuntimeError loading `j` throws ("" when it loads).
std::string load_error(const json& j) {
  Files f;
  try {
    f.load(j);
  } catch (const RuntimeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((f.dir / "tokenizer.json").string()), std::string::npos) << msg;
    return msg;
  }
  return "";
}

}  // namespace

TEST(BpeTokenizer, MergesApplyByRankNotByPosition) {
  Files f;
  auto tok = f.load(tiny());
  // hello: h e first (rank 1) takes the e that "e ll" (rank 4) would want; then ll, then he ll.
  EXPECT_EQ(tok->encode("hello"), (Ids{261, 'o'}));
  // yell: no h, so l l then e ll.
  EXPECT_EQ(tok->encode("yell"), (Ids{'y', 260}));
  // " the": Ġ t, h e, then Ġt he; the GPT-2 split keeps the space on the word.
  EXPECT_EQ(tok->encode("hello the yell"), (Ids{261, 'o', 258, ' ', 'y', 260}));
  EXPECT_EQ(tok->encode(""), Ids{});
}

TEST(BpeTokenizer, UnmergedBytesAreTheirByteLevelCharacters) {
  Files f;
  auto tok = f.load(tiny());
  EXPECT_EQ(tok->encode("é"), (Ids{0xC3, 0xA9}));
  EXPECT_EQ(tok->encode("😀\t"), (Ids{0xF0, 0x9F, 0x98, 0x80, '\t'}));
  const std::string text = "naïve 你好 😀\n\ttabs   and spaces";
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
}

TEST(BpeTokenizer, LongWordsMergeLikeShortOnes) {
  Files f;
  auto tok = f.load(tiny());
  std::string word;
  Ids want;
  for (int i = 0; i < 40; ++i) word += "hello", want.insert(want.end(), {261, 'o'});
  EXPECT_EQ(tok->encode(word), want);  // 200 symbols: the heap path
}

TEST(BpeTokenizer, MergeCacheStartsOverWhenFull) {
  Files f;
  auto tok = f.load(tiny());
  // More distinct words than the per-thread cache holds, each also encoded on its own.
  std::string text;
  Ids alone;
  for (int i = 0; i < 80000; ++i) {
    std::string word = " ";
    for (int k = i; word.size() < 5; k /= 26) word += static_cast<char>('a' + k % 26);
    text += word;
    for (int32_t id : tok->encode(word)) alone.push_back(id);
  }
  EXPECT_EQ(tok->encode(text), alone);
  EXPECT_EQ(tok->encode(text), alone);  // again, from a cache that started over midway
  EXPECT_EQ(tok->encode(" hello"), (Ids{' ', 261, 'o'}));
}

TEST(BpeTokenizer, AddedTokensAreCutOutFirstLongestFirst) {
  Files f;
  auto tok = f.load(tiny());
  EXPECT_EQ(tok->encode("hi<|endoftext|>the"), (Ids{'h', 'i', 263, 't', 257}));
  EXPECT_EQ(tok->encode("a[MASK]EDb"), (Ids{'a', 265, 'b'}));
  EXPECT_EQ(tok->encode("[MASK]E"), (Ids{264, 'E'}));
  EXPECT_EQ(tok->piece_id("<|endoftext|>"), 263);
  EXPECT_EQ(tok->piece_id("Ġthe"), 258);  // the vocabulary's spelling
  EXPECT_EQ(tok->piece_id(" the"), 258);  // the text it stands for
  EXPECT_EQ(tok->piece_id("nope"), -1);
  EXPECT_EQ(tok->decode({'h', 263, 258}), "h<|endoftext|> the");
}

TEST(BpeTokenizer, LstripAndRstripTakeTheWhitespace) {
  json j = tiny();
  j["added_tokens"][1]["lstrip"] = true;
  j["added_tokens"][1]["rstrip"] = true;
  Files f;
  auto tok = f.load(j);
  EXPECT_EQ(tok->encode("a  [MASK]  b"), (Ids{'a', 264, 'b'}));
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeVocabularyWords) {
  json j = tiny();
  Files f;
  EXPECT_EQ(f.load(j)->encode("hel"), (Ids{257, 'l'}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(f.load(j)->encode("hel"), (Ids{262}));
  EXPECT_EQ(f.load(j)->encode("hello"), (Ids{261, 'o'}));  // not a vocabulary word: merged as usual
}

TEST(BpeTokenizer, Llama3SplitThenByteLevel) {
  json j = tiny();
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {kLlama3Split, {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  Files f;
  auto tok = f.load(j);
  // I | 'LL (contractions in any case) | " " | 123 | 45 (digits in threes)
  EXPECT_EQ(tok->encode("I'LL 12345"), (Ids{'I', '\'', 'L', 'L', ' ', '1', '2', '3', '4', '5'}));
  EXPECT_EQ(tok->encode("I'LL the"), (Ids{'I', '\'', 'L', 'L', 258}));
}

TEST(BpeTokenizer, AddPrefixSpaceGivesEveryPieceItsSpace) {
  json j = tiny();
  j["pre_tokenizer"]["add_prefix_space"] = true;
  Files f;
  auto tok = f.load(j);
  EXPECT_EQ(tok->encode("the"), (Ids{258}));
  EXPECT_EQ(tok->encode("the<|endoftext|>the"), (Ids{258, 263, 258}));
}

TEST(BpeTokenizer, NfcComposesBeforeSplitting) {
  json j = tiny();
  const std::string decomposed = "e\xCC\x81";  // e + combining acute
  Files f;
  EXPECT_EQ(f.load(j)->encode(decomposed), (Ids{'e', 0xCC, 0x81}));
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
  EXPECT_EQ(f.load(j)->encode(decomposed), (Ids{0xC3, 0xA9}));
}

TEST(BpeTokenizer, BosFromTheTemplateEosFromTheAddedTokens) {
  json j = tiny();
  Files f;
  auto plain = f.load(j);
  EXPECT_EQ(plain->bos_id(), -1);
  EXPECT_EQ(plain->eos_id(), 263);
  EXPECT_EQ(plain->vocab_size(), 266);
  EXPECT_EQ(plain->checksum(), file_checksum(f.dir / "tokenizer.json"));

  j["added_tokens"].push_back({{"id", 300}, {"content", "<|begin_of_text|>"}, {"special", true}, {"normalized", false}});
  // Llama-3's post_processor, shortened.
  j["post_processor"] = json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
       "pair": [],
       "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [300], "tokens": ["<|begin_of_text|>"]}}}]})");
  auto llama = f.load(j);
  EXPECT_EQ(llama->bos_id(), 300);
  EXPECT_EQ(llama->eos_id(), 263);
  EXPECT_EQ(llama->vocab_size(), 301);
  EXPECT_EQ(llama->encode("<|begin_of_text|>the"), (Ids{300, 't', 257}));  // encode itself adds nothing
}

TEST(BpeTokenizer, SafeFromManyThreads) {
  Files f;
  auto tok = f.load(tiny());
  const std::string text = "hello the yell 😀 naïve <|endoftext|> [MASK]ED 12345";
  const Ids want = tok->encode(text);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i)
        if (tok->encode(text) != want) ++wrong;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(BpeTokenizer, PacksCarryTheirTokenizerJson) {
  json j = tiny();
  j["added_tokens"].push_back({{"id", 266}, {"content", "<|im_start|>"}, {"special", true}, {"normalized", false}});
  j["added_tokens"].push_back({{"id", 267}, {"content", "<|im_end|>"}, {"special", true}, {"normalized", false}});
  Files f;
  const auto path = f.write(j);
  EXPECT_EQ(load_tokenizer(path)->eos_id(), 263);  // the .json path picks this loader
  fixture::write_text(f.dir / "in.jsonl",
                      R"({"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"the yell"}]})"
                      "\n");
  PackOptions o;
  o.tokenize.inputs = {f.dir / "in.jsonl"};
  o.tokenize.progress = false;
  o.tokenize.chat_template = Template::chatml;
  o.tokenizer = path;
  o.output = f.dir / "out";
  o.plan.max_tokens = 256;
  run_pack(o);
  EXPECT_TRUE(std::filesystem::exists(f.dir / "out" / "tokenizer.json"));
  EXPECT_FALSE(std::filesystem::exists(f.dir / "out" / "tokenizer.model"));
  EXPECT_EQ(tokenizer_in(f.dir / "out"), f.dir / "out" / "tokenizer.json");
  Pack pack = open_pack(f.dir / "out", Verify::full);  // the header checked against tokenizer.json
  EXPECT_EQ(pack.dataset.info().eos_id, 263);
  EXPECT_EQ(pack.dataset.info().vocab_size, 268);
}

TEST(BpeTokenizer, InvalidUtf8IsAnError) {
  Files f;
  auto tok = f.load(tiny());
  EXPECT_THROW(tok->encode("ok \xFF bad"), RuntimeError);
}

TEST(BpeTokenizer, MalformedFilesNameTheFileAndTheKey) {
  {
    Files f;
    EXPECT_THROW(load_bpe_tokenizer(f.dir / "missing.json"), UsageError);
    fixture::write_text(f.dir / "tokenizer.json", "{\"model\": ");
    try {
      load_bpe_tokenizer(f.dir / "tokenizer.json");
      ADD_FAILURE() << "truncated JSON loaded";
    } catch (const RuntimeError& e) {
      EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
    }
  }
  auto expect = [](json j, const std::string& want) {
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find(want), std::string::npos) << "got: " << msg << "\nwanted: " << want;
  };
  json j = tiny();
  j["model"]["type"] = "WordPiece";
  expect(j, "model.type is WordPiece; only BPE is supported");
  j = tiny();
  j["model"].erase("vocab");
  expect(j, "model.vocab is missing");
  j = tiny();
  j["model"]["merges"][0] = "Ġ zz";
  expect(j, "model.merges[0] names \"zz\", which is not in model.vocab");
  j = tiny();
  j["model"]["merges"][2] = "Ġthe";
  expect(j, "model.merges[2] is \"Ġthe\"; a merge is \"left right\" with one space");
  j = tiny();
  j["model"]["vocab"]["h"] = "seven";
  expect(j, "model.vocab[\"h\"] must be a token id");
  j = tiny();
  j["model"]["dropout"] = 0.1;
  expect(j, "model.dropout is 0.1; BPE dropout is not supported");
  j = tiny();
  j["added_tokens"][0].erase("id");
  expect(j, "added_tokens[0].id is missing");
  j = tiny();
  j["normalizer"] = {{"type", "Lowercase"}};
  expect(j, "normalizer.type is Lowercase; supported normalizers are");
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect(j, "pre_tokenizer.type is Metaspace; supported pre-tokenizers are");
  j = tiny();
  j["pre_tokenizer"] = kLlama3Split;
  expect(j, "pre_tokenizer has no ByteLevel step");
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {kLlama3Split, j["pre_tokenizer"]}}};
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  expect(j, "pre_tokenizer.pretokenizers[0].pattern.Regex is not a usable regex");
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = R"(\w+|\s+)";  // Oniguruma's \w is its own
  expect(j, "pre_tokenizer.pretokenizers[0].pattern.Regex is not a usable regex (\\w is not supported");
  j = tiny();
  j["pre_tokenizer"]["use_regex"] = "yes";
  expect(j, "pre_tokenizer.use_regex must be true or false");
  j = tiny();
  j["post_processor"] = {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<s>"}}}}}}};
  expect(j, "post_processor.single names \"<s>\", which is not a token of this file");
}

// A pre-tokenizer pattern that backtracks catastrophically yet stays under PCRE2's per-call match
// limit ((a|aa){0,18} tries ~fib(18) ways at every 'a') would cost minutes on a 50 kB line: the
// line's budget (1 s + 20 us a byte = 2 s here) stops it with an error naming the pattern and
// where it came from, while an ordinary pattern takes the same line in milliseconds. One that
// passes the match limit in a single call ({0,30}) fails at once, named the same way.
TEST(TokenizerRegex, ARunawayPatternSpendsItsLineBudgetAndSaysSo) {
  const std::string line(50000, 'a');
  data::TokenizerRegex good(R"( ?\p{L}+| ?\p{N}+|\s+)", "tok.json: pre_tokenizer.pattern.Regex");
  size_t matches = 0;
  good.for_each_match(line, [&](size_t, size_t) { ++matches; });
  EXPECT_EQ(matches, 1u);
  data::TokenizerRegex bad("(?:a|aa){0,18}c|.", "tok.json: pre_tokenizer.pretokenizers[0].pattern.Regex");
  const auto t0 = std::chrono::steady_clock::now();
  try {
    bad.for_each_match(line, [](size_t, size_t) {});
    FAIL() << "a runaway pattern finished a 50 kB line";
  } catch (const RuntimeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tok.json: pre_tokenizer.pretokenizers[0].pattern.Regex"), std::string::npos) << m;
    EXPECT_NE(m.find("(?:a|aa){0,18}c|."), std::string::npos) << m;
    EXPECT_NE(m.find("budget"), std::string::npos) << m;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  data::TokenizerRegex worse("(?:a|aa){0,30}c|.", "tok.json: pre_tokenizer.pattern.Regex");
  try {
    worse.for_each_match(line, [](size_t, size_t) {});
    FAIL() << "a pattern past PCRE2's match limit finished";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("tok.json: pre_tokenizer.pattern.Regex: tokenizer regex"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("match limit"), std::string::npos) << e.what();
  }
}

// An added token far past the vocabulary (a typo'd id) is refused by name, before it sizes an id
// table of millions; ids right after the vocabulary, with gaps, stay fine (see above: 300).
TEST(BpeTokenizer, AddedTokenFarPastTheVocabularyIsRefused) {
  json j = tiny();
  j["added_tokens"].push_back({{"id", 16000000}, {"content", "<|far|>"}, {"special", true}, {"normalized", false}});
  Files f;
  try {
    f.load(j);
    FAIL() << "an added token at id 16,000,000 of a 263-id vocabulary loaded";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("added_tokens[3].id"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("65,536 past"), std::string::npos) << e.what();
  }
}
