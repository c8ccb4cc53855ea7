// libFuzzer target: the tokenized dataset reader, TokenDataset::open and operator[]
// (src/data/pack/token_dataset.cpp). The input is split into the files of a dataset directory:
//
//   byte 0        flags: bit 0 rewrites the header's CRC fields to match the files (so that
//                 mutations get past the CRC checks and reach what follows them); bit 1 writes
//                 the tail as relabel.bin; bit 2 makes tokens.bin one token short
//   bytes 1-2     H, little-endian; the next H bytes are header.json
//   next 2 bytes  L, little-endian; the next L bytes are index.bin
//   the rest      relabel.bin (with bit 1)
//
// tokens.bin and targets.bin are generated (ids k % 300, every other token a target) with the
// header's num_tokens when it is a small number, so that the size checks can pass. Every
// sequence of an opened dataset is read in full, with label_at at each target.
//
// A finding is any crash, sanitizer report or hang; an exception other than
// longalign::RuntimeError / UsageError; or an opened dataset whose sequences lie outside
// tokens.bin or whose relabels lie outside their sequence.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "longalign/core/crc32c.hpp"
#include "longalign/data/pack/token_dataset.hpp"

using namespace longalign;
using namespace longalign::data;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxGeneratedTokens = 1 << 16;

struct Reader {
  const uint8_t* p;
  size_t n;
  std::string_view take(size_t k) {
    k = std::min(k, n);
    std::string_view s(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    return s;
  }
  size_t u16() {
    std::string_view b = take(2);
    size_t v = 0;
    for (size_t i = 0; i < b.size(); ++i) v |= size_t(uint8_t(b[i])) << (8 * i);
    return v;
  }
};

uint32_t crc_of(std::string_view s) { return crc32c(s.data(), s.size()); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  Reader in{data + 1, size - 1};
  std::string header(in.take(in.u16()));
  const std::string index(in.take(in.u16()));
  const std::string relabel(in.take(in.n));

  uint64_t num_tokens = 0;
  json h = json::parse(header, nullptr, false);
  if (h.is_object()) {
    auto it = h.find("num_tokens");
    if (it != h.end() && it->is_number_unsigned() && it->get<uint64_t>() <= kMaxGeneratedTokens)
      num_tokens = it->get<uint64_t>();
  }
  if ((flags & 4) && num_tokens > 0) num_tokens -= 1;
  std::string tokens(num_tokens * sizeof(int32_t), '\0'), targets(num_tokens, '\0');
  for (uint64_t k = 0; k < num_tokens; ++k) {
    const int32_t id = int32_t(k % 300);
    std::memcpy(&tokens[k * sizeof(int32_t)], &id, sizeof id);
    targets[k] = char(k % 2);
  }
  if ((flags & 1) && h.is_object()) {
    // Only fields the header already has: a header that lacks one must keep lacking it.
    const std::pair<const char*, std::string_view> files[] = {{"index_crc32c", index}, {"relabel_crc32c", relabel}};
    for (const auto& [key, bytes] : files)
      if (h.contains(key)) h[key] = crc_of(bytes);
    header = h.dump();
  }

  static const auto dir = fuzz::scratch_dir() / "dataset";
  std::filesystem::create_directories(dir);
  fuzz::write_bytes(dir / "header.json", header);
  fuzz::write_bytes(dir / "index.bin", index);
  fuzz::write_bytes(dir / "tokens.bin", tokens);
  fuzz::write_bytes(dir / "targets.bin", targets);
  std::error_code ec;
  std::filesystem::remove(dir / "relabel.bin", ec);
  if (flags & 2) fuzz::write_bytes(dir / "relabel.bin", relabel);

  fuzz::expect_project_errors([&] {
    const TokenDataset ds = TokenDataset::open(dir);
    const uint64_t total = ds.info().num_tokens;
    uint64_t sink = 0;
    for (size_t i = 0; i < ds.size(); ++i) {
      const SequenceView v = ds[i];
      LONGALIGN_FUZZ_CHECK(v.offset <= total && v.length <= total - v.offset);
      for (uint32_t t = 0; t < v.length; ++t) {
        sink += uint32_t(v.ids[t]) + v.target[t];
        if (t > 0 && v.target[t]) sink += uint32_t(v.label_at(t));
      }
      for (size_t k = 0; k < v.num_relabels; ++k)
        LONGALIGN_FUZZ_CHECK(v.relabels[k].pos >= v.offset && v.relabels[k].pos < v.offset + v.length);
    }
    // Keeps the reads above from being optimized away.
    if (sink == 0xdeadbeefcafef00dULL) std::fprintf(stderr, "!");
  });
  return 0;
}
