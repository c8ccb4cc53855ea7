// Each subcommand registers itself on the app and returns the action to run once parsing
// succeeded; main() maps exceptions to exit codes.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace longalign::cli {

using Action = std::function<int()>;

void add_pack(CLI::App& app, Action& action);
void add_synth(CLI::App& app, Action& action);
void add_selfinstruct(CLI::App& app, Action& action);
void add_tokenizer(CLI::App& app, Action& action);
void add_demo(CLI::App& app, Action& action);
void add_train(CLI::App& app, Action& action);
void add_eval(CLI::App& app, Action& action);
void add_generate(CLI::App& app, Action& action);
void add_merge(CLI::App& app, Action& action);
void add_plan(CLI::App& app, Action& action);
void add_report(CLI::App& app, Action& action);
void add_attention_self_check(CLI::App& app, Action& action);

}  // namespace longalign::cli
