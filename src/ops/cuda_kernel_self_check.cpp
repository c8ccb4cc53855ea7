// The child-process self-check of the project's CUDA attention kernel (see the header for why a
// child): the child's measurements, the line it prints, and the parent's reading of it.
#include "longalign/ops/cuda_kernel_self_check.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "longalign/core/error.hpp"
#include "longalign/ops/varlen_attention.hpp"
#ifdef LONGALIGN_HAVE_CUDA_KERNELS
#include "longalign/ops/varlen_attention_cuda.hpp"
#endif

namespace longalign::ops {
namespace {

constexpr const char* kReportTag = "attention-self-check:";
// CUDA start-up, a 1,395-token fp32 reference and 16k-token timings take seconds; the limit stays
// well under distributed.timeout_s's default (300 s), as peers wait for this rank meanwhile.
constexpr double kChildTimeoutS = 120;

const char* dtype_name(at::ScalarType t) { return t == at::kHalf ? "fp16" : "bf16"; }

std::string tail(const std::string& s, size_t n) {
  std::string t = s.size() > n ? "..." + s.substr(s.size() - n) : s;
  for (auto& c : t)
    if (c == '\n') c = ' ';
  return t;
}

#ifdef LONGALIGN_HAVE_CUDA_KERNELS
// Worst relative error (max |got - want| / max |want|) of o, dq, dk, dv against the fp32 reference
// on a ragged GQA 4:1 pack with a sequence over 1,000 tokens: once with atomic dQ and the true
// max_seqlen, twice deterministic with an understated max_seqlen (the kernels must loop over the
// tiles beyond it); the two deterministic runs must agree bit for bit.
void check_correctness(SelfCheckReport& r, const torch::Device& dev, at::ScalarType dtype, int64_t d) {
  at::AutoGradMode grad_mode(true);
  const int64_t hq = 8, hkv = 2, true_max = 1100, understated_max = 150;
  const std::vector<int> cu_host = {0, 1, 78, 142, 1242, 1392, 1395};  // lengths 1, 77, 64, 1100, 150, 3
  const int64_t total = cu_host.back();
  auto gen = at::detail::createCPUGenerator(20240101);
  auto opts = torch::TensorOptions().device(dev).dtype(dtype);
  auto rnd = [&](int64_t h) { return at::randn({total, h, d}, gen, torch::kFloat).to(opts); };
  at::Tensor q = rnd(hq).requires_grad_(), k = rnd(hkv).requires_grad_(), v = rnd(hkv).requires_grad_(), go = rnd(hq);
  at::Tensor cu = torch::tensor(cu_host, torch::kInt).to(dev);
  const double scale = 1.0 / std::sqrt(double(d));
  auto f32 = [](const at::Tensor& t) { return t.detach().to(torch::kFloat).requires_grad_(); };
  at::Tensor qf = f32(q), kf = f32(k), vf = f32(v);
  at::Tensor ref = varlen_attention_reference(qf, kf, vf, cu, true_max, scale);
  auto gr = torch::autograd::grad({ref}, {qf, kf, vf}, {go.to(torch::kFloat)});
  auto rel = [&](const at::Tensor& got, const at::Tensor& want) {
    const double e = ((got.to(torch::kFloat) - want).abs().max() / want.abs().max()).item<double>();
    r.error = std::isfinite(e) ? std::max(r.error, e) : INFINITY;
  };
  std::vector<at::Tensor> deterministic_runs[2];
  const std::tuple<bool, int64_t, int> runs[] = {{false, true_max, -1}, {true, understated_max, 0}, {true, understated_max, 1}};
  for (const auto& [deterministic, max_len, slot] : runs) {
    at::Tensor o = varlen_attention_cuda(q, k, v, cu, max_len, scale, deterministic);
    auto g = torch::autograd::grad({o}, {q, k, v}, {go});
    rel(o.detach(), ref.detach());
    for (int i = 0; i < 3; ++i) rel(g[i], gr[i]);
    if (slot >= 0) deterministic_runs[slot] = {o.detach(), g[0], g[1], g[2]};
  }
  torch::cuda::synchronize(dev.index());
  // Loose enough for rounding (P and dS are rounded to 16 bits, as in FlashAttention), far below
  // what a wrong row, tile or fragment gives (order 1).
  r.tolerance = dtype == at::kHalf ? 1e-2 : 5e-2;
  const char* names[] = {"o", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i)
    if (!torch::equal(deterministic_runs[0][i], deterministic_runs[1][i]))
      r.detail += std::string(r.detail.empty() ? "" : ", ") + names[i] + " differs between two deterministic runs";
  if (!(r.error < r.tolerance))
    r.detail = "relative error " + std::to_string(r.error) + (r.detail.empty() ? "" : "; " + r.detail);
  r.correct = r.detail.empty();
}

// Median fwd+bwd milliseconds of `backend` on a 16k-token pack of LongAlign-like lengths.
double fwd_bwd_ms(const torch::Device& dev, at::ScalarType dtype, int64_t d, int64_t hq, int64_t hkv,
                  AttentionBackend backend) {
  at::AutoGradMode grad_mode(true);
  const std::vector<int> lens = {8192, 4096, 2048, 1024, 512, 256, 128, 64, 64};
  std::vector<int> cu_host = {0};
  for (int l : lens) cu_host.push_back(cu_host.back() + l);
  const int64_t total = cu_host.back();
  auto opts = torch::TensorOptions().device(dev).dtype(dtype);
  at::Tensor q = torch::randn({total, hq, d}, opts).requires_grad_(), k = torch::randn({total, hkv, d}, opts).requires_grad_(),
             v = torch::randn({total, hkv, d}, opts).requires_grad_(), go = torch::randn({total, hq, d}, opts);
  at::Tensor cu = torch::tensor(cu_host, torch::kInt).to(dev);
  auto once = [&] {
    at::Tensor o = varlen_attention(q, k, v, cu, lens.front(), 1.0 / std::sqrt(double(d)), backend);
    torch::autograd::grad({o}, {q, k, v}, {go});
  };
  once();  // warm-up: allocator, cudaFuncSetAttribute
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    torch::cuda::synchronize(dev.index());
    const auto t0 = std::chrono::steady_clock::now();
    once();
    torch::cuda::synchronize(dev.index());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}
#endif

}  // namespace

std::string format_self_check_report(const SelfCheckReport& r) {
  std::ostringstream s;
  s << kReportTag << " correct=" << (r.correct ? 1 : 0) << " error=" << r.error << " tolerance=" << r.tolerance
    << " speedup=" << r.speedup;
  if (!r.detail.empty()) s << " detail=" << tail(r.detail, 300);
  return s.str();
}

SelfCheckReport parse_self_check_report(const std::string& output) {
  SelfCheckReport r;
  const size_t at = output.rfind(kReportTag);
  if (at == std::string::npos || (at > 0 && output[at - 1] != '\n')) {
    r.detail = "no report line";
    return r;
  }
  std::string line = output.substr(at + std::string(kReportTag).size());
  line = line.substr(0, line.find('\n'));
  std::istringstream words(line);
  std::string w;
  int seen = 0;
  while (words >> w) {
    const size_t eq = w.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = w.substr(0, eq), value = w.substr(eq + 1);
    if (key == "detail") {
      r.detail = line.substr(line.find("detail=") + 7);
      break;
    }
    char* end = nullptr;
    const double x = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') continue;
    if (key == "correct") r.correct = x == 1, ++seen;
    else if (key == "error") r.error = x, ++seen;
    else if (key == "tolerance") r.tolerance = x, ++seen;
    else if (key == "speedup") r.speedup = x, ++seen;
  }
  if (seen != 4) {
    r = SelfCheckReport{};
    r.detail = "unreadable report line '" + tail(line, 200) + "'";
  }
  return r;
}

KernelVerdict judge_self_check(const ProcessResult& child, double timeout_s) {
  KernelVerdict v;
  if (!child.started || child.timed_out || child.signal != 0 || child.exit_code != 0) {
    v.message = "the check " + describe_end(child, timeout_s) + (child.output.empty() ? "" : ": " + tail(child.output, 400));
    return v;
  }
  const SelfCheckReport r = parse_self_check_report(child.output);
  std::ostringstream m;
  if (!r.correct) {
    m << "wrong results (" << r.detail << ", tolerance " << r.tolerance << ")";
    v.message = m.str();
    return v;
  }
  m.precision(3);
  m << "relative error " << r.error << " < " << r.tolerance << "; fwd+bwd at " << std::fixed << r.speedup
    << "x FlashAttention-2 on this device";
  v.correct = true;
  v.use_kernel = r.speedup >= 1.0;
  v.message = m.str();
  return v;
}

std::vector<std::string> self_check_command(int device, at::ScalarType dtype, int64_t head_dim, int64_t heads,
                                            int64_t kv_heads) {
  namespace fs = std::filesystem;
  fs::path exe;
  if (const char* env = std::getenv("LONGALIGN_EXE"); env && *env) exe = env;
  // This very binary through /proc/self/exe, which still runs it if the file was replaced meanwhile
  // (its name then reads "longalign (deleted)").
  else if (const fs::path self = self_executable(); self.filename().string().rfind("longalign", 0) == 0) exe = "/proc/self/exe";
  else if (std::error_code ec; fs::exists(self.parent_path() / "longalign", ec)) exe = self.parent_path() / "longalign";
  if (exe.empty()) return {};
  return {exe.string(), "-q", "attention-self-check", "--device", std::to_string(device), "--dtype", dtype_name(dtype),
          "--head-dim", std::to_string(head_dim), "--heads", std::to_string(heads), "--kv-heads", std::to_string(kv_heads)};
}

KernelVerdict cuda_kernel_verdict(const at::Tensor& q, int64_t kv_heads) {
  static std::mutex mu;
  static std::map<std::tuple<int, int, int64_t, int64_t, int64_t>, KernelVerdict> verdicts;
  const std::lock_guard<std::mutex> lock(mu);
  const int device = q.device().index();
  const auto key = std::make_tuple(device, int(q.scalar_type()), q.size(2), q.size(1), kv_heads);
  if (auto it = verdicts.find(key); it != verdicts.end()) return it->second;
  const auto argv = self_check_command(device, q.scalar_type(), q.size(2), q.size(1), kv_heads);
  KernelVerdict v;
  if (argv.empty()) {
    v.message = "the check could not run: no longalign binary beside " + self_executable().string() +
                " (set LONGALIGN_EXE to its path)";
  } else {
    v = judge_self_check(run_process(argv, kChildTimeoutS), kChildTimeoutS);
  }
  verdicts[key] = v;
  return v;
}

SelfCheckReport run_attention_self_check(int device, at::ScalarType dtype, int64_t head_dim, int64_t heads,
                                         int64_t kv_heads) {
#ifdef LONGALIGN_HAVE_CUDA_KERNELS
  if (!torch::cuda::is_available() || device < 0 || device >= int(torch::cuda::device_count()))
    throw RuntimeError("attention-self-check: no CUDA device " + std::to_string(device) + " visible to this process");
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0)
    throw UsageError("attention-self-check: --heads must be a positive multiple of --kv-heads");
  const torch::Device dev(torch::kCUDA, static_cast<c10::DeviceIndex>(device));
  at::Tensor probe = torch::empty({1, heads, head_dim}, torch::TensorOptions().device(dev).dtype(dtype));
  if (const std::string problem = cuda_kernel_support_problem(probe); !problem.empty())
    throw UsageError("attention-self-check: the kernel does not serve this device/shape: " + problem);
  SelfCheckReport r;
  check_correctness(r, dev, dtype, head_dim);
  if (r.correct)
    r.speedup = fwd_bwd_ms(dev, dtype, head_dim, heads, kv_heads, AttentionBackend::flash) /
                fwd_bwd_ms(dev, dtype, head_dim, heads, kv_heads, AttentionBackend::cuda);
  return r;
#else
  (void)device, (void)dtype, (void)head_dim, (void)heads, (void)kv_heads;
  throw RuntimeError("attention-self-check: this build has no CUDA kernels (no CUDA toolkit at build time)");
#endif
}

}  // namespace longalign::ops
