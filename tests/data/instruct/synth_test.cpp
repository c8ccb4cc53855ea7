// Synthetic data: seeded, parseable by our own reader, answers derivable from the prompt.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "longalign/data/chat/record_parser.hpp"
#include "longalign/data/instruct/synth.hpp"
#include "test_util.hpp"

using namespace longalign;
using namespace longalign::data;

TEST(Synth, SameSeedSameFileDifferentSeedDifferentFile) {
  fixture::TempDir tmp;
  SynthOptions o;
  o.num = 50;
  write_synth(o, tmp / "a.jsonl");
  write_synth(o, tmp / "b.jsonl");
  o.seed = 99;
  write_synth(o, tmp / "c.jsonl");
  EXPECT_EQ(fixture::read_text(tmp / "a.jsonl"), fixture::read_text(tmp / "b.jsonl"));
  EXPECT_NE(fixture::read_text(tmp / "a.jsonl"), fixture::read_text(tmp / "c.jsonl"));
}

TEST(Synth, TasksAreWellFormedAndAnswerable) {
  Rng rng(5);
  SynthOptions o;
  o.min_words = 300;
  o.max_words = 400;
  std::map<std::string, int> seen;
  for (int i = 0; i < 200; ++i) {
    std::string task;
    std::string line = synth_record(rng, o, &task);
    seen[task]++;
    auto r = parse_record(line, InputFormat::longalign);
    ASSERT_EQ(r.kind, ParsedRecord::Kind::conversation) << line;
    const auto& first = r.conv.rounds[0];
    if (task == "passkey") {
      std::string key = first.assistant.substr(16, 5);  // "The pass key is NNNNN."
      EXPECT_NE(first.user.find("The pass key is " + key + "."), std::string::npos);
      size_t words = std::count(first.user.begin(), first.user.end(), ' ');
      EXPECT_GE(words, 300u);
      EXPECT_LE(words, 460u);
    } else if (task == "kv_retrieval") {
      EXPECT_EQ(r.conv.rounds.size(), 2u);
      EXPECT_NE(first.user.find("\": \"" + first.assistant + "\""), std::string::npos);
    } else if (task == "add") {
      int a, b;
      ASSERT_EQ(std::sscanf(first.user.c_str(), "What is %d + %d?", &a, &b), 2);
      EXPECT_EQ(first.assistant, std::to_string(a + b));
    }
  }
  for (const char* t : {"passkey", "kv_retrieval", "add", "reverse", "sort", "upper"}) EXPECT_GT(seen[t], 0) << t;
}
