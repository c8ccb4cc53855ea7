// libFuzzer target: loading a byte-level BPE tokenizer.json (src/data/tokenize/bpe_tokenizer.cpp) and, when
// it loads, encoding a fixed text with it. The input is the file. Its seed corpus holds a small
// valid tokenizer and deeply nested variants, which must be refused by name, not crash where a
// value is printed.
//
// A finding is any crash, sanitizer report or hang, or an exception other than RuntimeError /
// UsageError; and a loaded tokenizer that returns an id outside its own vocabulary.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.hpp"
#include "longalign/data/tokenize/bpe_tokenizer.hpp"

using namespace longalign;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = fuzz::scratch_dir() / "tokenizer.json";
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_project_errors([&] {
    auto tok = data::load_bpe_tokenizer(path);
    for (int32_t id : tok->encode("Hello the hell, 12 <|endoftext|> \xc3\xa9t\xc3\xa9!"))
      LONGALIGN_FUZZ_CHECK(id >= 0 && id < tok->vocab_size());
  });
  return 0;
}
