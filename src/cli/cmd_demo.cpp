// `longalign demo`: the README's main job on the embedded default, end to end on generated
// data: synth -> tokenizer -> pack (all three strategies) -> a comparison summary.
#include <fmt/format.h>

#include <iostream>

#include "commands.hpp"
#include "longalign/core/log.hpp"
#include "longalign/data/pack_job.hpp"
#include "longalign/data/synth.hpp"
#include "longalign/data/tokenizer.hpp"

namespace fs = std::filesystem;

namespace longalign::cli {

void add_demo(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("demo", "Run the built-in demo on generated data (no downloads)");
  auto out = std::make_shared<std::string>("runs/demo");
  auto num = std::make_shared<uint64_t>(800);
  cmd->add_option("-o,--output", *out, "Demo directory (replaced on each run)")->capture_default_str();
  cmd->add_option("-n,--num", *num, "Synthetic records")->capture_default_str();
  cmd->callback([&action, out, num] {
    action = [out, num] {
      fs::path dir = *out;
      fs::create_directories(dir);
      data::SynthOptions so;
      so.num = *num;
      so.long_fraction = 0.4;
      so.min_words = 100;
      so.max_words = 1500;
      fs::path jsonl = dir / "synth.jsonl", tok = dir / "tokenizer.model";
      log::info("[1/3] synth: " + std::to_string(so.num) + " records -> " + jsonl.string());
      data::write_synth(so, jsonl);
      log::info("[2/3] tokenizer: training sentencepiece BPE -> " + tok.string());
      data::TokenizerTrainOptions to;
      to.vocab_size = 2000;
      data::train_sentencepiece({jsonl}, tok, to);
      log::info("[3/3] pack: naive, sort and pack strategies, 4096-token budget");
      std::string table = fmt::format("{:<8} {:>6} {:>8} {:>10} {:>10} {:>10}\n", "strategy", "steps", "batches",
                                      "tokens", "padding", "efficiency");
      data::PackStats last;
      for (auto strategy : {data::Strategy::naive, data::Strategy::sort, data::Strategy::pack}) {
        data::PackOptions po;
        po.tokenize.inputs = {jsonl};
        po.tokenize.progress = false;
        po.tokenizer = tok;
        po.plan.strategy = strategy;
        po.plan.max_tokens = 4096;
        po.plan.batch_size = strategy == data::Strategy::pack ? 1 : 4;
        po.plan.units_per_step = 2;
        po.output = dir / (std::string("data.") + data::to_string(strategy));
        po.overwrite = true;
        last = data::run_pack(po);
        table += fmt::format("{:<8} {:>6} {:>8} {:>10} {:>10} {:>9.2f}%\n", data::to_string(strategy), last.steps,
                             last.batches, last.tokens, last.padding_tokens, last.efficiency() * 100);
      }
      std::cout << "\n== longalign demo ==\n" << last.summary() << "\nbatching comparison:\n" << table
                << "\noutputs in " << dir.string() << " (data.pack/ is ready for training)\n";
      return 0;
    };
  });
}

}  // namespace longalign::cli
