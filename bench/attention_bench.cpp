// Attention benchmark (GPU only; not a test): the project's varlen kernel, with atomic and with
// deterministic dQ, beside PyTorch's FlashAttention-2 varlen op on the same packed inputs:
// forward, backward and forward+backward, in TFLOP/s with the causal count
// FLOPs = sum_i 4 * s_i^2 * D * Hq / 2 for the forward, x2.5 for the backward, x3.5 for both.
// Shapes: Hq=32, Hkv=8, head_dim 128 and 64; 64k tokens in LongAlign-like lengths, 8k and 16k
// single sequences. Prints a table and writes a JSON (default bench/results/attention.json, or
// --json PATH; scripts/gpu_check.sh collects it), rewritten (temp file, then rename) after every
// case, so a run stopped at its time limit keeps what it measured: "complete" is false and
// "cases_done" counts the cases in it until the last is written. Checks that the implementations
// agree at full size (exit 1 if not). Without a GPU it says so, writes nothing and exits 0.
#include <ATen/cuda/CUDAContext.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/ops/varlen_attention.hpp"

using namespace longalign;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Impl {
  const char* name;  // the JSON key
  ops::AttentionBackend backend;
  bool deterministic;
};
const Impl kImpls[] = {{"torch_fa2", ops::AttentionBackend::flash, false},
                       {"longalign", ops::AttentionBackend::cuda, false},
                       {"longalign_deterministic", ops::AttentionBackend::cuda, true}};

struct Timing {
  double fwd_ms = 0, bwd_ms = 0, fwdbwd_ms = 0;
};

// Mean times over `iters` runs after one warm-up: the forward alone without autograd, then
// forward+backward, where a synchronization between the two also gives the backward alone (the
// bubble it adds is microseconds against milliseconds).
Timing time_impl(const std::function<at::Tensor()>& run, const at::Tensor& go, std::vector<at::Tensor> leaves, int iters) {
  Timing t;
  {
    torch::NoGradGuard ng;
    run();
    torch::cuda::synchronize();
    auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) run();
    torch::cuda::synchronize();
    t.fwd_ms = ms_since(t0) / iters;
  }
  for (int i = 0; i <= iters; ++i) {  // i == 0 warms up
    for (auto& l : leaves) l.mutable_grad().reset();
    torch::cuda::synchronize();
    auto t0 = Clock::now();
    at::Tensor o = run();
    torch::cuda::synchronize();
    auto t1 = Clock::now();
    o.backward(go);
    torch::cuda::synchronize();
    if (i == 0) continue;
    t.bwd_ms += ms_since(t1) / iters;
    t.fwdbwd_ms += ms_since(t0) / iters;
  }
  return t;
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

void usage() { std::fprintf(stderr, "usage: attention_bench [--json PATH]  (default bench/results/attention.json)\n"); }

}  // namespace

int main(int argc, char** argv) {
  std::string json_path = "bench/results/attention.json";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      usage();
      return 2;
    }
  }
  if (!torch::cuda::is_available()) {
    std::printf("attention_bench: skipped, no CUDA GPU on this machine\n");
    return 0;
  }
  const int64_t hq = 32, hkv = 8;
  struct Case {
    const char* name;
    std::vector<int> lens;
  };
  const std::vector<Case> cases = {{"64k packed (LongAlign-like)", {30000, 12000, 9000, 6000, 4000, 2500, 1500, 536}},
                                   {"8k single", {8192}},
                                   {"16k single", {16384}}};
  // Fails before any GPU time is spent when the JSON's folder is not writable.
  try {
    check_writable_parent(json_path);
    const std::filesystem::path parent = std::filesystem::path(json_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_bench: %s; pass a writable path with --json\n", e.what());
    return 1;
  }
  const size_t cases_planned = 2 * cases.size();  // head_dim 128 and 64
  nlohmann::json doc = {
      {"device", at::cuda::getCurrentDeviceProperties()->name},
      {"date", utc_now()},
      {"torch", TORCH_VERSION},
      {"hq", hq},
      {"hkv", hkv},
      {"flops", "causal: fwd = sum_i 4 * s_i^2 * head_dim * Hq / 2; bwd = 2.5 x fwd; fwd+bwd = 3.5 x fwd"},
      {"agreement", "max |x - torch_fa2| / max |torch_fa2| over o, dq, dk, dv below 5e-2 (bf16 rounding differs; a bug is O(1))"},
      {"complete", false},
      {"cases_planned", cases_planned},
      {"cases_done", 0},
      {"cases", nlohmann::json::array()}};
  // The whole document, atomically: a reader (or the device tool collecting it after a kill) sees
  // the previous version or this one, never half of one.
  auto save = [&]() -> bool {
    doc["cases_done"] = doc["cases"].size();
    doc["complete"] = doc["cases"].size() == cases_planned;
    try {
      write_file_atomic(json_path, doc.dump(2) + "\n");
      return true;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "attention_bench: %s; pass a writable path with --json\n", e.what());
      return false;
    }
  };
  if (!save()) return 1;  // the device and versions, before the first case
  int status = 0;
  std::printf("%-28s %4s %-24s %9s %9s %9s %9s %9s %9s\n", "case", "D", "impl", "fwd ms", "fwd TF/s", "bwd ms", "bwd TF/s",
              "f+b ms", "f+b TF/s");
  for (int64_t d : {128, 64}) {
    for (const auto& c : cases) {
      std::vector<int> cu = {0};
      int max_len = 0;
      double flops = 0;
      for (int l : c.lens) cu.push_back(cu.back() + l), max_len = std::max(max_len, l), flops += 4.0 * l * l * d * hq / 2;
      const int64_t total = cu.back();
      auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
      auto q = torch::randn({total, hq, d}, opts).requires_grad_(), k = torch::randn({total, hkv, d}, opts).requires_grad_(),
           v = torch::randn({total, hkv, d}, opts).requires_grad_();
      auto go = torch::randn({total, hq, d}, opts);
      auto cut = torch::tensor(cu, torch::kInt).to(torch::kCUDA);
      const double scale = 1.0 / std::sqrt(double(d));
      nlohmann::json row = {{"name", c.name}, {"head_dim", d}, {"tokens", total}, {"sequences", c.lens.size()}};
      std::vector<at::Tensor> fa2;  // o, dq, dk, dv of torch_fa2, the reference of the agreement
      row["agrees"] = false;  // until measured
      for (const Impl& im : kImpls) {
        auto run = [&] { return ops::varlen_attention(q, k, v, cut, max_len, scale, im.backend, im.deterministic); };
        Timing t;
        std::vector<at::Tensor> out;
        // A failing implementation is reported and the rest still measured: a lent GPU is rare.
        try {
          t = time_impl(run, go, {q, k, v}, 5);
          for (at::Tensor l : {q, k, v}) l.mutable_grad().reset();  // copies share the tensor and its grad
          at::Tensor o = run();
          o.backward(go);
          out = {o.detach(), q.grad().clone(), k.grad().clone(), v.grad().clone()};
        } catch (const std::exception& e) {
          std::printf("%-28s %4lld %-24s FAILED: %s\n", c.name, (long long)d, im.name, e.what());
          row["errors"][im.name] = e.what();
          status = 1;
          continue;
        }
        const double tf = flops / (t.fwd_ms * 1e-3) / 1e12, tb = 2.5 * flops / (t.bwd_ms * 1e-3) / 1e12,
                     tfb = 3.5 * flops / (t.fwdbwd_ms * 1e-3) / 1e12;
        std::printf("%-28s %4lld %-24s %9.2f %9.1f %9.2f %9.1f %9.2f %9.1f\n", c.name, (long long)d, im.name, t.fwd_ms, tf,
                    t.bwd_ms, tb, t.fwdbwd_ms, tfb);
        nlohmann::json m = {{"fwd_tflops", tf}, {"bwd_tflops", tb}, {"fwdbwd_tflops", tfb},
                            {"fwd_ms", t.fwd_ms}, {"bwd_ms", t.bwd_ms}, {"fwdbwd_ms", t.fwdbwd_ms}};
        if (std::string(im.name) == "torch_fa2") {
          fa2 = out;
        } else if (!fa2.empty()) {
          // Agreement at full size (where the fp64 test oracle is out of reach): the largest
          // difference relative to the largest FlashAttention-2 value, per output.
          double worst = 0;
          nlohmann::json diffs;
          const char* names[] = {"o", "dq", "dk", "dv"};
          for (int i = 0; i < 4; ++i) {
            auto a = out[i].to(torch::kFloat), b = fa2[i].to(torch::kFloat);
            const double rel = ((a - b).abs().max() / b.abs().max()).item<double>();
            worst = std::isfinite(rel) ? std::max(worst, rel) : INFINITY;
            diffs[names[i]] = rel;
          }
          const bool agrees = worst < 5e-2;
          if (!agrees) status = 1;
          m["agrees"] = agrees;
          m["max_rel_diff"] = diffs;
          std::printf("%-33s %-24s vs torch_fa2: f+b %.0f%% of its speed, max relative difference %s%s\n", "", im.name,
                      100.0 * row["fwdbwd_ms"].value("torch_fa2", 0.0) / t.fwdbwd_ms, diffs.dump().c_str(),
                      agrees ? "" : "  <-- MISMATCH");
        }
        // The required shape keys each metric by implementation; the deterministic variant has
        // its own object beside them.
        if (std::string(im.name) == "longalign_deterministic") {
          row[im.name] = m;
          continue;
        }
        for (const char* key : {"fwd_tflops", "bwd_tflops", "fwdbwd_tflops", "fwd_ms", "bwd_ms", "fwdbwd_ms"})
          row[key][im.name] = m[key];
        if (m.contains("agrees")) row["agrees"] = m["agrees"], row["max_rel_diff"] = m["max_rel_diff"];
      }
      doc["cases"].push_back(row);
      if (!save()) return 1;
      std::fflush(stdout);  // the table so far reaches the log of a run that may be stopped
    }
  }
  std::printf("wrote %s (%zu cases)\n", json_path.c_str(), cases_planned);
  return status;
}
