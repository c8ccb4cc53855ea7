// `longalign report RUN_DIR`: the run's report.html (training curves, data plan, evaluations beside
// the run, configuration) as one self-contained page. `train` writes the same page at each
// checkpoint and at the end; this command rewrites it, e.g. after an evaluation.
#include <cstdio>

#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/train/run_report.hpp"
#include "options.hpp"

namespace longalign::cli {

void add_report(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("report", "Write a training run's report.html: curves, plan, evaluations, config");
  auto dir = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("run_dir", *dir, "The run's output.dir (holds metrics.jsonl)")->required();
  cmd->add_option("-o,--output", *out, "Where to write the page (default: RUN_DIR/report.html)");
  cmd->footer("Example:\n  longalign eval needle -m runs/tiny_cpu/checkpoints/step-00000084 -o runs/tiny_cpu/needle\n"
              "  longalign report runs/tiny_cpu     # the heatmap joins the training curves");
  cmd->callback([&action, dir, out] {
    action = [dir, out] {
      check_input_dir(*dir, "RUN_DIR");
      const auto metrics = std::filesystem::path(*dir) / "metrics.jsonl";
      if (!std::filesystem::exists(std::filesystem::symlink_status(metrics)))
        throw UsageError("RUN_DIR " + *dir + " has no metrics.jsonl: give a training run's output.dir");
      check_input_file(metrics, "RUN_DIR's metrics.jsonl");  // a FIFO or device is named, never opened
      if (!out->empty()) check_output_path(*out, OutputKind::file, "--output");
      const auto written = train::write_run_report(*dir, *out);
      std::printf("report: %s\n", written.string().c_str());
      return 0;
    };
  });
}

}  // namespace longalign::cli
