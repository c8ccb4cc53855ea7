// libFuzzer target: the JSONL record parser (src/data/chat/record_parser.cpp). The input is one JSONL
// line; it is parsed in every dialect (LongAlign, ShareGPT, Alpaca, pre-tokenized) and through
// format detection.
//
// A finding is any crash, sanitizer report or hang; an exception other than
// longalign::RuntimeError / UsageError; or a parsed record that breaks the contract of
// record_parser.hpp / conversation.hpp: a conversation without rounds, with an empty answer or
// with text that is not valid UTF-8, or a token record whose target mask differs in length
// from its ids, whose token 0 is a target, or whose relabels are unsorted, out of range or not
// targets.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.hpp"
#include "longalign/data/chat/record_parser.hpp"
#include "longalign/data/tokenize/utf8.hpp"

using namespace longalign;
using namespace longalign::data;

namespace {

bool valid_utf8(std::string_view s) { return find_invalid_utf8(s) == std::string_view::npos; }

void check(const ParsedRecord& r) {
  switch (r.kind) {
    case ParsedRecord::Kind::conversation:
      LONGALIGN_FUZZ_CHECK(!r.conv.rounds.empty());
      LONGALIGN_FUZZ_CHECK(valid_utf8(r.conv.system));
      for (const auto& round : r.conv.rounds) {
        LONGALIGN_FUZZ_CHECK(!round.assistant.empty());
        LONGALIGN_FUZZ_CHECK(valid_utf8(round.user));
        LONGALIGN_FUZZ_CHECK(valid_utf8(round.assistant));
      }
      break;
    case ParsedRecord::Kind::tokens: {
      const auto& t = r.tokens;
      LONGALIGN_FUZZ_CHECK(!t.ids.empty());
      LONGALIGN_FUZZ_CHECK(t.target.size() == t.ids.size());
      LONGALIGN_FUZZ_CHECK(t.target[0] == 0);
      for (int32_t id : t.ids) LONGALIGN_FUZZ_CHECK(id >= 0);
      for (size_t k = 0; k < t.relabels.size(); ++k) {
        const auto& rl = t.relabels[k];
        LONGALIGN_FUZZ_CHECK(rl.pos > 0 && rl.pos < t.ids.size());
        LONGALIGN_FUZZ_CHECK(k == 0 || t.relabels[k - 1].pos < rl.pos);
        LONGALIGN_FUZZ_CHECK(t.target[rl.pos] == 1);
        LONGALIGN_FUZZ_CHECK(rl.label >= 0 && rl.label != t.ids[rl.pos]);
      }
      break;
    }
    case ParsedRecord::Kind::skipped:
    case ParsedRecord::Kind::invalid:
      // Both are counted in the pack statistics under `reason`, so it must be set.
      LONGALIGN_FUZZ_CHECK(!r.reason.empty());
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  fuzz::expect_project_errors([&] {
    for (InputFormat f : {InputFormat::longalign, InputFormat::sharegpt, InputFormat::alpaca, InputFormat::tokens})
      check(parse_record(line, f));
    InputFormat detected = detect_format(line);
    if (detected != InputFormat::detect) check(parse_record(line, detected));
  });
  return 0;
}
