// libFuzzer target: the chat templates (src/data/chat/chat_template.cpp). The first input byte picks
// how the rest becomes a Conversation: odd, as a JSONL record through the record parser (so the
// corpus can hold real records); even, split raw at 0x1E bytes into system, user, assistant,
// user, assistant, ... (so any bytes, invalid UTF-8 included, reach the templates). The second
// byte is a max_tokens bound for encode_segments. Every template (all values of the Template
// enum that to_string names) is rendered and encoded with three stand-in tokenizers: one id
// per byte with BOS, EOS and every piece known; one with no BOS and no pieces (pieces are then
// encoded as text); and one with no EOS, which must be refused with RuntimeError exactly when
// the template ends answers with EOS.
//
// A finding is any crash, sanitizer report or hang; an exception other than
// longalign::RuntimeError / UsageError; or a result that breaks chat_template.hpp's contract:
// targets that are not, round by round, the answer (as given, or trimmed) and one closing
// token; ids and masks that differ from encoding each segment on its own (token 0 never a
// target); or a max_tokens-bounded encoding that is not a prefix of the full one, or stops
// before max_tokens + 1 ids.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "longalign/core/text.hpp"
#include "longalign/data/chat/chat_template.hpp"
#include "longalign/data/chat/record_parser.hpp"

using namespace longalign;
using namespace longalign::data;

namespace {

// Text is 3 + byte; every piece (when known) gets an id of its own above the byte range.
class StandInTokenizer final : public Tokenizer {
 public:
  StandInTokenizer(int32_t bos, int32_t eos, bool pieces) : bos_(bos), eos_(eos), pieces_(pieces) {}
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size());
    for (unsigned char c : text) ids.push_back(3 + c);
    return ids;
  }
  std::string decode(const std::vector<int32_t>&) const override { return {}; }
  int32_t piece_id(std::string_view p) const override {
    if (!pieces_ || p.empty()) return -1;
    return 300 + int32_t(std::hash<std::string_view>{}(p) % 1000);
  }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t vocab_size() const override { return 1300; }
  std::string checksum() const override { return "fuzz"; }

 private:
  int32_t bos_, eos_;
  bool pieces_;
};

Conversation split_raw(std::string_view s) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == '\x1e') {
      fields.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  Conversation c;
  c.system = fields[0];
  for (size_t i = 1; i + 1 < fields.size(); i += 2) c.rounds.push_back({fields[i], fields[i + 1]});
  return c;
}

// The ids each segment yields when encoded on its own, written out independently of
// encode_segments; -1 stands for "refused: no EOS".
TokenizedRecord expected_encoding(const std::vector<Segment>& segs, const Tokenizer& tok, bool& refused) {
  TokenizedRecord r;
  refused = false;
  auto push = [&](int32_t id, bool target) {
    r.ids.push_back(id);
    r.target.push_back(target ? 1 : 0);
  };
  for (const auto& s : segs) {
    switch (s.kind) {
      case Segment::Kind::bos:
        if (tok.bos_id() >= 0) push(tok.bos_id(), s.target);
        break;
      case Segment::Kind::eos:
        if (tok.eos_id() < 0) {
          refused = true;
          return r;
        }
        push(tok.eos_id(), s.target);
        break;
      case Segment::Kind::piece:
      case Segment::Kind::text:
        if (s.kind == Segment::Kind::piece && tok.piece_id(s.text) >= 0) {
          push(tok.piece_id(s.text), s.target);
        } else {
          for (unsigned char c : s.text) push(3 + c, s.target);
        }
        break;
    }
  }
  if (!r.target.empty()) r.target[0] = 0;
  return r;
}

void check_render(const Conversation& conv, const std::vector<Segment>& segs) {
  std::vector<const Segment*> targets;
  for (const auto& s : segs)
    if (s.target) targets.push_back(&s);
  // Each round: its answer as a text segment, then the one token that closes it.
  LONGALIGN_FUZZ_CHECK(targets.size() == 2 * conv.rounds.size());
  for (size_t i = 0; i < conv.rounds.size(); ++i) {
    const Segment& answer = *targets[2 * i];
    const Segment& close = *targets[2 * i + 1];
    LONGALIGN_FUZZ_CHECK(answer.kind == Segment::Kind::text);
    LONGALIGN_FUZZ_CHECK(answer.text == conv.rounds[i].assistant || answer.text == trim(conv.rounds[i].assistant));
    LONGALIGN_FUZZ_CHECK(close.kind == Segment::Kind::eos || (close.kind == Segment::Kind::piece && !close.text.empty()));
  }
}

void check_encoding(const std::vector<Segment>& segs, const Tokenizer& tok, size_t max_tokens) {
  bool refused = false;
  const TokenizedRecord want = expected_encoding(segs, tok, refused);
  bool threw = false;
  TokenizedRecord got;
  try {
    got = encode_segments(segs, tok);
  } catch (const RuntimeError&) {
    threw = true;
  }
  LONGALIGN_FUZZ_CHECK(threw == refused);
  if (threw) return;
  LONGALIGN_FUZZ_CHECK(got.ids == want.ids);
  LONGALIGN_FUZZ_CHECK(got.target == want.target);
  LONGALIGN_FUZZ_CHECK(got.relabels.empty());

  const TokenizedRecord bounded = encode_segments(segs, tok, max_tokens);
  LONGALIGN_FUZZ_CHECK(bounded.ids.size() == bounded.target.size());
  LONGALIGN_FUZZ_CHECK(bounded.ids.size() <= got.ids.size());
  if (got.ids.size() > max_tokens) LONGALIGN_FUZZ_CHECK(bounded.ids.size() > max_tokens);
  else LONGALIGN_FUZZ_CHECK(bounded.ids.size() == got.ids.size());
  for (size_t k = 0; k < bounded.ids.size(); ++k) {
    LONGALIGN_FUZZ_CHECK(bounded.ids[k] == got.ids[k]);
    LONGALIGN_FUZZ_CHECK(bounded.target[k] == got.target[k]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_tokens = data[1];
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  fuzz::expect_project_errors([&] {
    Conversation conv;
    if (data[0] & 1) {
      InputFormat f = detect_format(rest);
      ParsedRecord r = parse_record(rest, f == InputFormat::detect ? InputFormat::longalign : f);
      if (r.kind != ParsedRecord::Kind::conversation) return;
      conv = std::move(r.conv);
    } else {
      conv = split_raw(rest);
    }
    const StandInTokenizer full(1, 2, true), bare(-1, 2, false), no_eos(1, -1, true);
    // Every template, including ones added after this target was written.
    for (int k = 0; k < 64; ++k) {
      const Template t = static_cast<Template>(k);
      const std::string name = to_string(t);
      if (name == "?") break;
      LONGALIGN_FUZZ_CHECK(parse_template(name) == t);
      const std::vector<Segment> segs = render_template(conv, t);
      check_render(conv, segs);
      for (const Tokenizer* tok : {static_cast<const Tokenizer*>(&full), static_cast<const Tokenizer*>(&bare),
                                   static_cast<const Tokenizer*>(&no_eos)})
        check_encoding(segs, *tok, max_tokens);
    }
  });
  return 0;
}
