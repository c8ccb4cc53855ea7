// longalign entry point: parse, run one subcommand, map errors to exit codes
// (0 success, 1 runtime failure, 2 usage or config error).
#include <algorithm>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/suggest.hpp"

namespace {

// CLI11 would only say "A subcommand is required" for a mistyped command; name it instead.
bool known_command(const CLI::App& app, const std::string& word) {
  if (word.empty() || word[0] == '-') return true;
  std::vector<std::string> names;
  const std::function<bool(const CLI::App*)> every = [](const CLI::App*) { return true; };
  for (const auto* sub : app.get_subcommands(every)) names.push_back(sub->get_name());
  if (std::find(names.begin(), names.end(), word) != names.end()) return true;
  const std::string near = longalign::nearest(word, names);
  std::cerr << "unknown command '" << word << "'" << (near.empty() ? "" : " (did you mean '" + near + "'?)")
            << "; run longalign --help for the list\n";
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace longalign;
  CLI::App app{"longalign: long-context supervised fine-tuning (LongAlign recipe)"};
  app.set_version_flag("--version", std::string("longalign ") + LONGALIGN_VERSION);
  app.require_subcommand(1);
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "Debug logging");
  app.add_flag("-q,--quiet", quiet, "Warnings and errors only");
  cli::Action action;
  cli::add_synth(app, action);
  cli::add_selfinstruct(app, action);
  cli::add_tokenizer(app, action);
  cli::add_pack(app, action);
  cli::add_train(app, action);
  cli::add_plan(app, action);
  cli::add_generate(app, action);
  cli::add_merge(app, action);
  cli::add_eval(app, action);
  cli::add_report(app, action);
  cli::add_demo(app, action);
  cli::add_attention_self_check(app, action);
  if (argc > 1 && !known_command(app, argv[1])) return kExitUsage;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  log::set_level(verbose ? log::Level::debug : quiet ? log::Level::warn : log::Level::info);
  try {
    return action ? action() : kExitUsage;
  } catch (const UsageError& e) {
    log::error(e.what());
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    // A bare "std::bad_alloc" says nothing: say what it means and what usually causes it.
    log::error("out of memory: an input asked for more memory than this machine has (a corrupt or hostile size "
               "field, a --max-tokens or batch too large for its memory, or a too-large model); run with -v to "
               "see the last step before it");
    return kExitRuntime;
  } catch (const nlohmann::json::exception& e) {
    // Every loader checks the JSON it reads; one that slipped through still names itself.
    log::error(std::string("a JSON file holds a value of an unexpected type or shape (") + e.what() +
               "); run with -v to see which file was being read");
    return kExitRuntime;
  } catch (const std::exception& e) {
    log::error(e.what());
    return kExitRuntime;
  }
}
