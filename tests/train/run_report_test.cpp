// The run report against a run directory laid out by hand: every section finds its file, the
// charts are inline SVG with the metrics' values on their axes, a line cut by a kill and a
// non-finite loss are survived, untrusted text is escaped, and nothing is fetched from a network.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <regex>

#include "longalign/train/run_report.hpp"
#include "test_util.hpp"

using namespace longalign;
namespace fs = std::filesystem;

namespace {
void put(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}
}  // namespace

TEST(RunReport, NiceTicksAreRoundAndCoverTheRange) {
  EXPECT_EQ(train::nice_ticks(0, 7.6), (std::vector<double>{0, 2, 4, 6, 8}));
  EXPECT_EQ(train::nice_ticks(1, 66), (std::vector<double>{0, 20, 40, 60, 80}));
  const auto t = train::nice_ticks(0.00029, 0.003);
  EXPECT_LE(t.front(), 0.00029);
  EXPECT_GE(t.back(), 0.003);
  EXPECT_LE(t.size(), 8u);
  const auto flat = train::nice_ticks(5, 5);  // a constant series still gets an axis
  EXPECT_LT(flat.front(), 5);
  EXPECT_GT(flat.back(), 5);
}

TEST(RunReport, ChartLeavesGapsAtNonFiniteValues) {
  const double nan = std::nan("");
  const std::string svg = train::svg_line_chart("Loss", {1, 2, 3, 4, 5, 6}, {5, 4, nan, 3, 2.5, 2}, "step");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(count(svg, "<polyline"), 2u);  // steps 1-2 and 4-6
  EXPECT_NE(svg.find(">Loss<"), std::string::npos);
  EXPECT_NE(train::svg_line_chart("x", {1}, {nan}, "step").find("no finite values"), std::string::npos);
}

TEST(RunReport, EverySectionFromARunDirectory) {
  fixture::TempDir tmp;
  const fs::path run = tmp.path / "my-run";
  put(run / "metrics.jsonl",
      "{\"step\":1,\"loss\":7.5,\"lr\":0.001,\"grad_norm\":9.0,\"tokens\":100,\"tokens_per_s\":300,\"elapsed_s\":1,\"skipped\":false}\n"
      "{\"step\":2,\"loss\":null,\"lr\":0.002,\"grad_norm\":null,\"tokens\":100,\"tokens_per_s\":310,\"elapsed_s\":2,\"skipped\":true}\n"
      "{\"step\":3,\"loss\":4.25,\"lr\":0.003,\"grad_norm\":3.0,\"tokens\":100,\"tokens_per_s\":320,\"elapsed_s\":3,\"skipped\":false}\n"
      "{\"step\":4,\"loss\":3.9");  // cut by a kill
  put(run / "data.pack" / "stats.json",
      R"({"records": 10, "sequences": 9, "tokens": 1234, "target_tokens": 600, "steps": 3, "efficiency": 0.975,
          "padding_tokens": 31, "length_histogram": [{"min": 16, "max_exclusive": 32, "count": 4},
          {"min": 32, "max_exclusive": 64, "count": 5}],
          "plan_quality": {"rank_imbalance_mean": 1.05, "rank_imbalance_max": 1.2, "balance_world_size": 2,
                           "sequences_per_step": {"min": 2, "max": 4, "mean": 3}, "weight_cv": 0.01}})");
  put(run / "needle" / "heatmap.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>NEEDLE-MARK</text></svg>\n");
  put(run / "longbench" / "report.json",
      R"({"items": 50, "scored": 49, "mean_score": 6.5, "score_x10": 65.0, "protocol": "longbench-chat few-shot", "judge_model": "gpt-4"})");
  put(run / "train_config.yaml", "model:\n  path: \"/models/<script>alert(1)</script>\"\n");

  const std::string h = train::run_report_html(run);
  EXPECT_NE(h.find("Run report: my-run"), std::string::npos);
  EXPECT_NE(h.find("3 (last: step 3)"), std::string::npos) << "three whole lines of metrics";
  EXPECT_NE(h.find("unreadable lines"), std::string::npos);
  EXPECT_NE(h.find("skipped steps"), std::string::npos);
  EXPECT_NE(h.find("7.5000 (first) -&gt; 4.2500 (last)"), std::string::npos);
  for (const char* chart : {">Loss<", ">Learning rate<", ">Gradient norm (before clipping)<", ">Throughput (tokens/s)<",
                            ">Sequence lengths (tokens)<"})
    EXPECT_NE(h.find(chart), std::string::npos) << chart;
  EXPECT_NE(h.find("0.975"), std::string::npos);         // token fill
  EXPECT_NE(h.find("1.200 at worst"), std::string::npos);  // rank imbalance
  EXPECT_NE(h.find("NEEDLE-MARK"), std::string::npos);     // the heatmap inline
  EXPECT_NE(h.find("65.0"), std::string::npos);            // LongBench-Chat x10
  EXPECT_NE(h.find("49 of 50"), std::string::npos);
  EXPECT_EQ(h.find("<script>"), std::string::npos) << "config text must be escaped";
  EXPECT_NE(h.find("&lt;script&gt;"), std::string::npos);
  // Self-contained: no external scripts, styles, images or fonts.
  EXPECT_FALSE(std::regex_search(h, std::regex(R"((src|href)\s*=)"))) << "the page links to something";
  EXPECT_FALSE(std::regex_search(h, std::regex(R"(url\()"))) << "the page fetches something";
  EXPECT_GE(count(h, "<svg"), 6u);  // 4 training charts, the histogram, the heatmap

  const fs::path out = train::write_run_report(run);
  EXPECT_EQ(out, run / "report.html");
  EXPECT_TRUE(fs::exists(out));
}

TEST(RunReport, AnEmptyRunSaysWhatIsMissing) {
  fixture::TempDir tmp;
  const std::string h = train::run_report_html(tmp.path);
  EXPECT_NE(h.find("No metrics.jsonl"), std::string::npos);
  EXPECT_NE(h.find("No readable stats.json"), std::string::npos);
  EXPECT_NE(h.find("No evaluation beside this run"), std::string::npos);
  EXPECT_NE(h.find("No train_config.yaml"), std::string::npos);
}
