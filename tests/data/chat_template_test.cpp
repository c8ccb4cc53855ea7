// Exact token/label layouts for a hand-checked two-round conversation with a system prompt, in
// every template. The byte tokenizer makes the token stream readable: decode(ids) is the whole
// sequence and decode(target ids) is exactly what the model is trained to produce.
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
#include "longalign/data/chat_template.hpp"
#include "test_tokenizers.hpp"

using namespace longalign::data;

namespace {

struct Layout {
  std::string full, targets;
};

Layout layout(Template t) {
  Conversation c{"SYS", {{"Q1", "A1"}, {"Q2", "A2"}}};
  longalign::fixture::ByteTokenizer tok;
  TokenizedRecord r = encode_segments(render_template(c, t), tok);
  EXPECT_EQ(r.ids.size(), r.target.size());
  EXPECT_EQ(r.target[0], 0);
  std::vector<int32_t> tgt;
  for (size_t i = 0; i < r.ids.size(); ++i)
    if (r.target[i]) tgt.push_back(r.ids[i]);
  return {tok.decode(r.ids), tok.decode(tgt)};
}

}  // namespace

TEST(ChatTemplate, Llama2) {
  Layout l = layout(Template::llama2);
  EXPECT_EQ(l.full, "<s>[INST]<<SYS>>\nSYS\n<</SYS>>\n\nQ1[/INST]A1</s>\n\n[INST]Q2[/INST]A2</s>");
  EXPECT_EQ(l.targets, "A1</s>A2</s>");
}

TEST(ChatTemplate, ChatGlm3) {
  Layout l = layout(Template::chatglm3);
  EXPECT_EQ(l.full, "[gMASK]<sop>SYS\n\n[Round 1]\n\n问：Q1\n\n答：A1</s>\n\n[Round 2]\n\n问：Q2\n\n答：A2</s>");
  EXPECT_EQ(l.targets, "A1</s>A2</s>");
}

TEST(ChatTemplate, ChatMl) {
  Layout l = layout(Template::chatml);
  EXPECT_EQ(l.full,
            "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1</s>"
            "\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2</s>");
  EXPECT_EQ(l.targets, "A1</s>A2</s>");
}

TEST(ChatTemplate, Raw) {
  Layout l = layout(Template::raw);
  EXPECT_EQ(l.full, "<s>SYS\n\nQ1A1</s>Q2A2</s>");
  EXPECT_EQ(l.targets, "A1</s>A2</s>");
}

TEST(ChatTemplate, TargetBoundariesArePositional) {
  // Not just the same characters: the targets must be exactly the answer positions.
  Conversation c{"", {{"AB", "AB"}}};
  longalign::fixture::ByteTokenizer tok;
  TokenizedRecord r = encode_segments(render_template(c, Template::raw), tok);
  // <s> A B | A B </s>
  EXPECT_EQ(r.target, (std::vector<uint8_t>{0, 0, 0, 1, 1, 1}));
}

TEST(ChatTemplate, UnknownTemplateIsAUsageError) {
  EXPECT_THROW(parse_template("vicuna"), longalign::UsageError);
  EXPECT_EQ(parse_template("chatglm3"), Template::chatglm3);
}
