// Exact token/label layouts for a hand-checked two-round conversation with a system prompt, in
// every template (llama3 and qwen as their models' own chat templates render them). The byte tokenizer makes the token stream readable: decode(ids) is the whole
// sequence and decode(target ids) is exactly what the model is trained to produce.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "longalign/core/error.hpp"
#include "longalign/data/chat/chat_template.hpp"
#include "longalign/data/chat/template_detect.hpp"
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

// ChatGLM3's own tokenizer spells <sop> "sop" (a special token, not a piece of its model).
TEST(ChatTemplate, ChatGlm3TakesSopWhenTheTokenizerHasNoSopPiece) {
  struct ChatGlmLike : Tokenizer {
    longalign::fixture::ByteTokenizer bytes;
    std::vector<int32_t> encode(std::string_view t) const override { return bytes.encode(t); }
    std::string decode(const std::vector<int32_t>& ids) const override { return bytes.decode(ids); }
    int32_t piece_id(std::string_view p) const override { return p == "[gMASK]" ? 259 : p == "sop" ? 260 : -1; }
    int32_t bos_id() const override { return 1; }
    int32_t eos_id() const override { return 2; }
    int32_t vocab_size() const override { return 261; }
    std::string checksum() const override { return "chatglm-like"; }
  } tok;
  TokenizedRecord r = encode_segments(render_template(Conversation{"", {{"Q", "A"}}}, Template::chatglm3), tok);
  ASSERT_GE(r.ids.size(), 2u);
  EXPECT_EQ(r.ids[0], 259);
  EXPECT_EQ(r.ids[1], 260);
}

TEST(ChatTemplate, ChatMl) {
  Layout l = layout(Template::chatml);
  EXPECT_EQ(l.full,
            "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1</s>"
            "\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2</s>");
  EXPECT_EQ(l.targets, "A1</s>A2</s>");
}

TEST(ChatTemplate, Llama3) {
  Layout l = layout(Template::llama3);
  const std::string h = "<|start_header_id|>", e = "<|end_header_id|>\n\n";
  EXPECT_EQ(l.full, "<|begin_of_text|>" + h + "system" + e + "SYS<|eot_id|>" + h + "user" + e + "Q1<|eot_id|>" + h +
                        "assistant" + e + "A1<|eot_id|>" + h + "user" + e + "Q2<|eot_id|>" + h + "assistant" + e +
                        "A2<|eot_id|>");
  EXPECT_EQ(l.targets, "A1<|eot_id|>A2<|eot_id|>");
}

TEST(ChatTemplate, QwenWithItsDefaultSystemPrompt) {
  Layout l = layout(Template::qwen);
  EXPECT_EQ(l.full, "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1"
                    "<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2<|im_end|>");
  EXPECT_EQ(l.targets, "A1<|im_end|>A2<|im_end|>");
  longalign::fixture::ByteTokenizer tok;
  auto r = encode_segments(render_template(Conversation{"", {{"Q", "A"}}}, Template::qwen), tok);
  EXPECT_EQ(tok.decode(r.ids), std::string("<|im_start|>system\n") + kQwenDefaultSystem +
                                   "<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>");
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

TEST(ChatTemplate, DetectedFromTheTokenizerConfigOrTheSpecialTokens) {
  longalign::fixture::TempDir tmp;
  auto with_config = [&](const std::string& name, const std::string& chat_template) {
    std::filesystem::create_directories(tmp / name);
    longalign::fixture::write_text(tmp / name / "tokenizer_config.json",
                                   nlohmann::json{{"chat_template", chat_template}}.dump());
    longalign::fixture::write_text(tmp / name / "tokenizer.json", "{}");
    return tmp / name / "tokenizer.json";
  };
  // Fragments of the templates these models ship.
  EXPECT_EQ(detect_template(with_config("l3", "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}")),
            Template::llama3);
  EXPECT_EQ(detect_template(with_config("qw", "You are Qwen, created by Alibaba Cloud. <|im_start|>system")),
            Template::qwen);
  EXPECT_EQ(detect_template(with_config("cm", "{{'<|im_start|>' + message['role'] + '\\n'}}")), Template::chatml);
  EXPECT_EQ(detect_template(with_config("l2", "{{ bos_token + '[INST] ' + content + ' [/INST]' }}")), Template::llama2);
  EXPECT_THROW(detect_template(with_config("xx", "{{ '### Human: ' + content }}")), longalign::UsageError);
  // No config: a tokenizer.json's special tokens, or llama2 for a sentencepiece model.
  std::filesystem::create_directories(tmp / "bare");
  longalign::fixture::write_text(tmp / "bare" / "tokenizer.json",
                                 R"({"added_tokens":[{"id":5,"content":"<|im_start|>"},{"id":6,"content":"<|im_end|>"}]})");
  EXPECT_EQ(detect_template(tmp / "bare" / "tokenizer.json"), Template::qwen);
  longalign::fixture::write_text(tmp / "bare" / "other.json", R"({"added_tokens":[]})");
  EXPECT_THROW(detect_template(tmp / "bare" / "other.json"), longalign::UsageError);
  EXPECT_EQ(detect_template(tmp / "bare" / "tokenizer.model"), Template::llama2);
}
