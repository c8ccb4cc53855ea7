// `longalign synth`: write seeded synthetic LongAlign-format JSONL.
#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/data/instruct/synth.hpp"
#include "options.hpp"

namespace longalign::cli {

constexpr int64_t kMaxRecords = 100000000;  // beyond this a typo, not a data set
constexpr int64_t kMaxWords = 10000000;

void add_synth(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("synth", "Write synthetic LongAlign-format JSONL (passkey, key-value, short tasks)");
  auto o = std::make_shared<data::SynthOptions>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("-o,--output", *out, "Output JSONL file")->required();
  cmd->add_option("-n,--num", o->num, "Number of records")->capture_default_str()->check(int_range(1, kMaxRecords));
  cmd->add_option("--long-fraction", o->long_fraction, "Share of long-context records")
      ->capture_default_str()
      ->check(real_range(0, 1));
  cmd->add_option("--min-words", o->min_words, "Shortest long context, in words")
      ->capture_default_str()
      ->check(int_range(1, kMaxWords));
  cmd->add_option("--max-words", o->max_words, "Longest long context, in words")
      ->capture_default_str()
      ->check(int_range(1, kMaxWords));
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same file)")->capture_default_str()->check(any_seed());
  cmd->footer("Example: longalign synth -o data.jsonl -n 2000 --min-words 500 --max-words 8000");
  cmd->callback([&action, o, out] {
    action = [o, out] {
      check_output_path(*out, OutputKind::file, "--output");
      if (o->min_words > o->max_words)
        throw UsageError("--min-words " + std::to_string(o->min_words) + " exceeds --max-words " +
                         std::to_string(o->max_words));
      data::write_synth(*o, *out);
      log::info("wrote " + std::to_string(o->num) + " records to " + *out);
      return 0;
    };
  });
}

}  // namespace longalign::cli
