// `longalign synth`: write seeded synthetic LongAlign-format JSONL.
#include "commands.hpp"
#include "longalign/core/log.hpp"
#include "longalign/data/synth.hpp"

namespace longalign::cli {

void add_synth(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("synth", "Write synthetic LongAlign-format JSONL (passkey, key-value, short tasks)");
  auto o = std::make_shared<data::SynthOptions>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("-o,--output", *out, "Output JSONL file")->required();
  cmd->add_option("-n,--num", o->num, "Number of records")->capture_default_str();
  cmd->add_option("--long-fraction", o->long_fraction, "Share of long-context records")->capture_default_str();
  cmd->add_option("--min-words", o->min_words, "Shortest long context, in words")->capture_default_str();
  cmd->add_option("--max-words", o->max_words, "Longest long context, in words")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same file)")->capture_default_str();
  cmd->footer("Example: longalign synth -o data.jsonl -n 2000 --min-words 500 --max-words 8000");
  cmd->callback([&action, o, out] {
    action = [o, out] {
      data::write_synth(*o, *out);
      log::info("wrote " + std::to_string(o->num) + " records to " + *out);
      return 0;
    };
  });
}

}  // namespace longalign::cli
