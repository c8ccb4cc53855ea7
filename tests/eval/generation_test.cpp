// Generation and evaluation building blocks: KV-cached greedy decoding equals full recompute,
// middle truncation keeps exact halves, the needle lands at the requested depth (within one
// sentence), and judge replies parse (the heatmap: tests/eval/heatmap_test.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/core/error.hpp"
#include "longalign/eval/generator.hpp"
#include "longalign/eval/judge.hpp"
#include "longalign/eval/needle.hpp"
#include "longalign/model/weights.hpp"
#include "test_tokenizers.hpp"

using namespace longalign;

namespace {

std::unique_ptr<eval::Generator> random_generator(int64_t kv_heads) {
  model::LlamaConfig c;
  c.vocab_size = 261, c.hidden_size = 64, c.intermediate_size = 128, c.num_hidden_layers = 3;
  c.num_attention_heads = 4, c.num_key_value_heads = kv_heads, c.max_position_embeddings = 512;
  auto m = std::make_shared<model::LlamaForCausalLMImpl>(c);
  model::init_weights(*m, 0.3, 11);
  m->eval();
  return std::make_unique<eval::Generator>(m, std::make_unique<fixture::ByteTokenizer>());
}

}  // namespace

TEST(Generation, KvCacheGreedyEqualsFullRecompute) {
  for (int64_t kv : {4, 1}) {
    auto gen = random_generator(kv);
    auto prompt = gen->prompt_ids("Tell me a story about a river.", data::Template::llama2, 400);
    eval::SamplingOptions o;
    o.max_new_tokens = 40;
    auto cached = gen->generate(prompt, o);
    auto full = gen->generate_uncached_greedy(prompt, 40);
    EXPECT_GE(cached.size(), 5u);
    EXPECT_EQ(cached, full) << "kv heads " << kv;
  }
}

TEST(Generation, SamplingIsSeededAndStopsAtMaxNewTokens) {
  auto gen = random_generator(2);
  auto prompt = gen->prompt_ids("hello", data::Template::raw, 100);
  eval::SamplingOptions o;
  o.max_new_tokens = 12, o.temperature = 1.0, o.top_p = 0.9, o.seed = 5;
  auto a = gen->generate(prompt, o), b = gen->generate(prompt, o);
  EXPECT_EQ(a, b);
  EXPECT_LE(a.size(), 12u);
}

TEST(Generation, MiddleTruncationKeepsFirstAndLastHalves) {
  std::vector<int32_t> ids(100);
  for (int i = 0; i < 100; ++i) ids[i] = i;
  auto t = eval::middle_truncate(ids, 11);
  EXPECT_EQ(t, (std::vector<int32_t>{0, 1, 2, 3, 4, 94, 95, 96, 97, 98, 99}));
  EXPECT_EQ(eval::middle_truncate(ids, 100), ids);
  auto gen = random_generator(1);  // prompts over budget are cut inside the user text only
  auto p = gen->prompt_ids(std::string(300, 'a') + std::string(300, 'z'), data::Template::llama2, 120);
  EXPECT_EQ(p.size(), 120u);
  std::string text = gen->tokenizer().decode(p);
  EXPECT_EQ(text.substr(0, 9), "<s>[INST]");
  EXPECT_EQ(text.substr(text.size() - 12), "zzzzz[/INST]");
}

TEST(Needle, PlacedAtTheRequestedDepthWithinOneSentence) {
  fixture::ByteTokenizer tok;
  auto sentences = eval::load_filler_sentences({}, 3);
  size_t longest = 0;
  for (const auto& s : sentences) longest = std::max(longest, s.size() + 1);
  for (double depth : {0.0, 0.1, 0.35, 0.5, 0.9, 1.0}) {
    auto h = eval::build_haystack(sentences, 4000, depth, tok, 9);
    const size_t needle_len = ("The pass key is " + h.key + ". Remember it. " + h.key + " is the pass key. ").size();
    const double filler = double(h.context_end - h.context_begin - needle_len);
    const double at = double(h.needle_offset - h.context_begin) / filler;
    EXPECT_NEAR(at, depth, double(longest) / filler) << "depth " << depth;
    EXPECT_NEAR(double(tok.encode(h.text).size()), 4000, 16 + double(longest));
    EXPECT_EQ(h.text.substr(h.needle_offset, 16), "The pass key is ");
  }
}

TEST(Needle, EssayNeedleLandsAtEachDepthOfTheGrid) {
  fixture::ByteTokenizer tok;
  auto sentences = eval::load_filler_sentences({}, 5);
  size_t longest = 0;
  for (const auto& s : sentences) longest = std::max(longest, s.size() + 1);
  const std::string needle = eval::kSanFranciscoNeedle, question = "\n\nQ?";
  auto depths = eval::default_depths(5, 0.1, 0.9);
  ASSERT_EQ(depths.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(depths[i], 0.1 + 0.2 * double(i), 1e-12);
  for (double depth : depths) {
    auto h = eval::build_haystack_with(sentences, 3000, depth, tok, needle, "H\n", question);
    EXPECT_EQ(h.text.substr(h.needle_offset, needle.size()), needle);
    EXPECT_EQ(h.text.find(needle), h.needle_offset);  // exactly once
    const double filler = double(h.context_end - h.context_begin - needle.size() - 1);
    EXPECT_NEAR(double(h.needle_offset - h.context_begin) / filler, depth, double(longest) / filler);
    EXPECT_EQ(h.text.substr(h.text.size() - question.size()), question);
  }
  EXPECT_EQ(eval::default_lengths(8000, 3, 1000), (std::vector<int64_t>{1000, 4500, 8000}));
}

TEST(Judge, ScoreParsing) {
  EXPECT_EQ(eval::parse_judge_score("Good answer. Rating: [[8]]"), 8.0);
  EXPECT_EQ(eval::parse_judge_score("[[3]] at first, but on reflection [[9]]"), 9.0);
  EXPECT_EQ(eval::parse_judge_score("Rating: [[7.5]]"), 7.5);
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[8]] (out of [[ten]])"));  // the last brackets count
  EXPECT_EQ(eval::parse_judge_score("Rating: [[7/10]]"), 7.0);             // their first number
  EXPECT_FALSE(eval::parse_judge_score("no score at all"));
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[11]]"));
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[0]]"));
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[]]"));
  EXPECT_FALSE(eval::parse_judge_score("Rating: [8]"));
  // Signs, hex and exponents are not ratings (they used to read as 5, 9 and 1).
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[-5]]"));
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[+5]]"));
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[0x9]]"));
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[1e1]]"));
  EXPECT_FALSE(eval::parse_judge_score("Rating: [[7.]]"));
  EXPECT_EQ(eval::parse_judge_score("Rating: [[ 6 ]]"), 6.0);
  EXPECT_EQ(eval::fill_judge_prompt("Q={question} R={reference} P={prediction}", "q", "r", "p"), "Q=q R=r P=p");
  // The benchmark's positional prompt_fs.txt form: question, reference, (answer, score) x N, prediction.
  std::vector<eval::ScoredExample> ex = {{"a1", "7"}, {"a2", "3"}};
  EXPECT_EQ(eval::fill_judge_prompt("{}|{}|{}:[[{}]]|{}:[[{}]]|{}|{{x}}", "q", "r", "p", ex), "q|r|a1:[[7]]|a2:[[3]]|p|{x}");
  EXPECT_THROW(eval::fill_judge_prompt("{}|{}|{}", "q", "r", "p", ex), longalign::UsageError);  // 3 slots, 7 values
  // Named form: {examples} renders every example with its rating; substituted text is not rescanned.
  std::string named = eval::fill_judge_prompt("{examples}{prediction}", "q", "r", "{question}", ex);
  EXPECT_NE(named.find("a1"), std::string::npos);
  EXPECT_NE(named.find("[[3]]"), std::string::npos);
  EXPECT_EQ(named.substr(named.size() - 10), "{question}");
}
