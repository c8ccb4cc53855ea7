// open_pack: verification in the order that makes each later check meaningful (see header).
#include "longalign/data/pack/pack_reader.hpp"

#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"

namespace fs = std::filesystem;

namespace longalign::data {
namespace {

// A full pass over the tokens; cheap next to one training step.
void check_tokens(const TokenDataset& ds, const fs::path& dir) {
  const int64_t vocab = ds.info().vocab_size;
  for (size_t i = 0; i < ds.size(); ++i) {
    const SequenceView v = ds[i];
    uint32_t targets = 0;
    for (uint32_t t = 0; t < v.length; ++t) {
      if (v.ids[t] < 0 || (vocab > 0 && v.ids[t] >= vocab))
        throw RuntimeError("pack " + dir.string() + " is corrupt: sequence " + std::to_string(i) + " holds token id " +
                           std::to_string(v.ids[t]) + ", outside the vocabulary of " + std::to_string(vocab) +
                           "; re-run `longalign pack`");
      if (v.target[t] > 1)
        throw RuntimeError("pack " + dir.string() + " is corrupt: targets.bin holds " + std::to_string(v.target[t]) +
                           " (flags are 0 or 1); re-run `longalign pack`");
      targets += v.target[t];
    }
    if (targets != v.n_targets)
      throw RuntimeError("pack " + dir.string() + " is corrupt: sequence " + std::to_string(i) + " has " +
                         std::to_string(targets) + " targets but the index says " + std::to_string(v.n_targets) +
                         "; re-run `longalign pack`");
  }
}

}  // namespace

std::vector<SeqInfo> sequence_infos(const TokenDataset& ds) {
  std::vector<SeqInfo> seqs(ds.size());
  for (size_t i = 0; i < ds.size(); ++i) seqs[i] = {ds[i].length, ds[i].n_targets};
  return seqs;
}

Pack open_pack(const fs::path& dir, Verify level) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw RuntimeError("pack " + dir.string() + " does not exist or is not a directory; make it with `longalign pack`");
  verify_pack_manifest(dir, level);
  Pack p{TokenDataset::open(dir), load_plan(contained_file(dir, "plan.json", "pack " + dir.string(), kMaxSideFileBytes))};
  validate_plan(p.plan, sequence_infos(p.dataset), (dir / "plan.json").string());
  const fs::path tok = tokenizer_in(dir);
  const std::string& want = p.dataset.info().tokenizer_checksum;
  if (fs::exists(tok)) {
    auto inconsistent = [&](const std::string& why) {
      return RuntimeError("pack " + dir.string() + " is inconsistent: " + why + "; re-run `longalign pack`");
    };
    const auto t = load_tokenizer(tok);  // its checksum covers a tokenizer_config.json that adds tokens
    if (t->checksum() != want)
      throw inconsistent("its " + tok.filename().string() + " is not the tokenizer that header.json records (checksum " +
                         want + ")");
    const DatasetInfo& h = p.dataset.info();
    if (t->vocab_size() != h.vocab_size || t->bos_id() != h.bos_id || t->eos_id() != h.eos_id)
      throw inconsistent("header.json says vocabulary " + std::to_string(h.vocab_size) + " (bos " +
                         std::to_string(h.bos_id) + ", eos " + std::to_string(h.eos_id) + ") but " +
                         tok.filename().string() + " has " +
                         std::to_string(t->vocab_size()) + " (bos " + std::to_string(t->bos_id()) + ", eos " +
                         std::to_string(t->eos_id()) + ")");
  }
  if (level == Verify::full) check_tokens(p.dataset, dir);
  return p;
}

}  // namespace longalign::data
