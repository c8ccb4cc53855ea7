// Each JSONL dialect parses to the same Conversation; each class of unusable record is
// skipped under its own reason; malformed lines are `invalid`.
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
#include "longalign/data/chat/record_parser.hpp"

using namespace longalign::data;
using Kind = ParsedRecord::Kind;

TEST(RecordParser, LongAlignMultiTurnWithSystem) {
  auto r = parse_record(
      R"({"messages":[{"role":"system","content":"S"},{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},)"
      R"({"role":"user","content":"q2"},{"role":"assistant","content":"a\u200b2"},{"role":"user","content":"dangling"}]})",
      InputFormat::longalign);
  ASSERT_EQ(r.kind, Kind::conversation) << r.detail;
  EXPECT_EQ(r.conv.system, "S");
  ASSERT_EQ(r.conv.rounds.size(), 2u);  // trailing unanswered user turn dropped
  EXPECT_EQ(r.conv.rounds[0].user, "q1");
  EXPECT_EQ(r.conv.rounds[0].assistant, "a1");
  EXPECT_EQ(r.conv.rounds[1].assistant, "a2");  // zero-width space stripped
}

TEST(RecordParser, ShareGptAndAlpacaMapToTheSameRounds) {
  auto s = parse_record(R"({"conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"a"}]})",
                        InputFormat::sharegpt);
  ASSERT_EQ(s.kind, Kind::conversation);
  EXPECT_EQ(s.conv.rounds[0].user, "q");
  EXPECT_EQ(s.conv.rounds[0].assistant, "a");
  auto a = parse_record(R"({"instruction":"do","input":"this","output":"done"})", InputFormat::alpaca);
  ASSERT_EQ(a.kind, Kind::conversation);
  EXPECT_EQ(a.conv.rounds[0].user, "do\n\nthis");
  EXPECT_EQ(a.conv.rounds[0].assistant, "done");
  auto a2 = parse_record(R"({"instruction":"do","input":"","output":"done"})", InputFormat::alpaca);
  EXPECT_EQ(a2.conv.rounds[0].user, "do");
}

TEST(RecordParser, NullContentIsEmptyText) {
  auto r = parse_record(R"({"messages":[{"role":"user","content":null},{"role":"assistant","content":"a"}]})",
                        InputFormat::longalign);
  ASSERT_EQ(r.kind, Kind::conversation);
  EXPECT_EQ(r.conv.rounds[0].user, "");
}

TEST(RecordParser, PreTokenizedWithAndWithoutLabels) {
  auto r = parse_record(R"({"input_ids":[5,6,7,8],"labels":[-100,-100,7,8]})", InputFormat::tokens);
  ASSERT_EQ(r.kind, Kind::tokens);
  EXPECT_EQ(r.tokens.ids, (std::vector<int32_t>{5, 6, 7, 8}));
  EXPECT_EQ(r.tokens.target, (std::vector<uint8_t>{0, 0, 1, 1}));
  auto n = parse_record(R"({"input_ids":[5,6,7]})", InputFormat::tokens);
  EXPECT_EQ(n.tokens.target, (std::vector<uint8_t>{0, 1, 1}));  // every token after the first
  auto bad = parse_record(R"({"input_ids":[5,6],"labels":[-100,-7]})", InputFormat::tokens);
  EXPECT_EQ(bad.kind, Kind::skipped);
  EXPECT_EQ(bad.reason, "bad_labels");
  auto short_labels = parse_record(R"({"input_ids":[5,6],"labels":[-100]})", InputFormat::tokens);
  EXPECT_EQ(short_labels.reason, "bad_labels");
}

TEST(RecordParser, ReferenceLabelsThatDifferFromInputsAreKept) {
  // The LongAlign reference labels a round's end with EOS (2) at the position of the next
  // round's first input token (20): HF semantics, labels[t] is what position t-1 predicts.
  auto r = parse_record(R"({"input_ids":[1,10,11,20,21],"labels":[-100,-100,11,2,21]})", InputFormat::tokens);
  ASSERT_EQ(r.kind, Kind::tokens);
  EXPECT_EQ(r.tokens.target, (std::vector<uint8_t>{0, 0, 1, 1, 1}));
  ASSERT_EQ(r.tokens.relabels.size(), 1u);
  EXPECT_EQ(r.tokens.relabels[0].pos, 3u);
  EXPECT_EQ(r.tokens.relabels[0].label, 2);
}

TEST(RecordParser, SkipReasons) {
  auto reason = [](const char* line, InputFormat f) {
    auto r = parse_record(line, f);
    EXPECT_EQ(r.kind, Kind::skipped) << line;
    return r.reason;
  };
  EXPECT_EQ(reason(R"({"messages":[{"content":"no role"},{"role":"assistant","content":"a"}]})", InputFormat::longalign),
            "missing_field");
  EXPECT_EQ(reason(R"({"messages":[{"role":"user"},{"role":"assistant","content":"a"}]})", InputFormat::longalign),
            "missing_field");
  EXPECT_EQ(reason(R"({"other":1})", InputFormat::longalign), "missing_field");
  EXPECT_EQ(reason(R"({"messages":[]})", InputFormat::longalign), "empty_conversation");
  EXPECT_EQ(reason(R"({"messages":[{"role":"user","content":"q"}]})", InputFormat::longalign), "empty_conversation");
  EXPECT_EQ(reason(R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"\u200b"}]})",
                   InputFormat::longalign),
            "empty_assistant_turn");
  EXPECT_EQ(reason(R"({"messages":[{"role":"assistant","content":"a"},{"role":"user","content":"q"}]})",
                   InputFormat::longalign),
            "bad_turn_order");
  EXPECT_EQ(reason(R"({"messages":[{"role":"robot","content":"q"}]})", InputFormat::longalign), "unknown_role");
  EXPECT_EQ(reason(R"({"instruction":"x"})", InputFormat::alpaca), "missing_field");
}

TEST(RecordParser, MalformedJsonAndBadUtf8AreInvalid) {
  auto j = parse_record(R"({"messages": [)", InputFormat::longalign);
  EXPECT_EQ(j.kind, Kind::invalid);
  EXPECT_EQ(j.reason, "malformed_json");
  auto u = parse_record("{\"messages\": \"\xFF\"}", InputFormat::longalign);
  EXPECT_EQ(u.kind, Kind::invalid);
  EXPECT_EQ(u.reason, "invalid_utf8");
  EXPECT_NE(u.detail.find("byte 14"), std::string::npos) << u.detail;
}

TEST(RecordParser, DetectsFormatsFromKeys) {
  EXPECT_EQ(detect_format(R"({"messages":[]})"), InputFormat::longalign);
  EXPECT_EQ(detect_format(R"({"conversations":[]})"), InputFormat::sharegpt);
  EXPECT_EQ(detect_format(R"({"instruction":"","output":""})"), InputFormat::alpaca);
  EXPECT_EQ(detect_format(R"({"input_ids":[1]})"), InputFormat::tokens);
  EXPECT_EQ(detect_format(R"({"text":"?"})"), InputFormat::detect);
  EXPECT_THROW(parse_input_format("csv"), longalign::UsageError);
}

// A record nested deeper than any chat needs is an invalid record (counted, or an error naming
// its line), not a crash where a value of it is later printed.
TEST(RecordParser, DeeplyNestedJsonIsInvalid) {
  const std::string deep = "{\"messages\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  auto j = parse_record(deep, InputFormat::longalign);
  EXPECT_EQ(j.kind, Kind::invalid);
  EXPECT_EQ(j.reason, "too_deep");
  EXPECT_NE(j.detail.find("deeper than 128"), std::string::npos) << j.detail;
  // 100 levels is still an ordinary (if wrong-shaped) record.
  auto ok = parse_record("{\"messages\": " + std::string(100, '[') + std::string(100, ']') + "}", InputFormat::longalign);
  EXPECT_NE(ok.reason, "too_deep");
}
