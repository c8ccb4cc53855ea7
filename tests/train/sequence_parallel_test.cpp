// Ulysses sequence parallelism in one process: the slicing against a layout worked out by hand,
// and the attention exchange on n threads (one per rank, all_to_all through shared memory)
// against the unsplit reference attention, outputs and gradients, in fp64.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "longalign/ops/varlen_attention.hpp"
#include "longalign/train/sequence_parallel.hpp"
#include "longalign/train/train_config.hpp"

namespace {

using namespace longalign;

// n ranks as threads: all_to_all through one slot per rank, two barriers per call.
struct ThreadGroup {
  explicit ThreadGroup(int n) : n(n), slots(static_cast<size_t>(n)) {}
  void arrive_and_wait() {
    std::unique_lock lk(mu);
    const uint64_t gen = generation;
    if (++arrived == n) {
      arrived = 0, ++generation;
      cv.notify_all();
    } else {
      cv.wait(lk, [&] { return generation != gen; });
    }
  }
  int n;
  std::vector<at::Tensor> slots;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
};

class ThreadRank final : public train::Collectives {
 public:
  ThreadRank(std::shared_ptr<ThreadGroup> g, int rank) : g_(std::move(g)), rank_(rank) {}
  int rank() const override { return rank_; }
  int world() const override { return g_->n; }
  void all_to_all(at::Tensor& out, const at::Tensor& in) override {
    g_->slots[size_t(rank_)] = in.reshape({-1}).clone();
    g_->arrive_and_wait();
    const int64_t c = in.numel() / g_->n;
    for (int r = 0; r < g_->n; ++r) out.view({-1}).narrow(0, r * c, c).copy_(g_->slots[size_t(r)].narrow(0, rank_ * c, c));
    g_->arrive_and_wait();  // nobody overwrites a slot still being read
  }
  void all_reduce_sum(at::Tensor&) override { unused(); }
  void reduce_sum(at::Tensor&, int) override { unused(); }
  void broadcast(at::Tensor&, int) override { unused(); }
  void all_gather(at::Tensor&, const at::Tensor&) override { unused(); }
  void reduce_scatter_sum(at::Tensor&, const at::Tensor&) override { unused(); }
  void barrier() override { g_->arrive_and_wait(); }
  std::shared_ptr<Collectives> split() override { unused(); return nullptr; }
  std::shared_ptr<Collectives> subgroup(int, int) override { unused(); return nullptr; }

 private:
  [[noreturn]] static void unused() { throw std::logic_error("not used by the attention exchange"); }
  std::shared_ptr<ThreadGroup> g_;
  int rank_;
};

TEST(SequenceParallel, SliceHandWorked) {
  // Two sequences (4 and 3 tokens) = 7 tokens over n = 4: padded to 8 with one pad token as its
  // own segment; slices of 2 tokens, the second sequence straddling slices 2 and 3.
  train::MicroBatch full{{torch::arange(10, 17), torch::tensor({0, 1, 2, 3, 0, 1, 2}), torch::tensor({0, 4, 7}, torch::kInt), 4},
                         torch::tensor({11, 12, 13, -100, 15, 16, -100}),
                         torch::tensor({.5f, .5f, .5f, 0.f, 1.f, 1.f, 0.f})};
  const std::vector<std::vector<int64_t>> ids = {{10, 11}, {12, 13}, {14, 15}, {16, 0}};
  const std::vector<std::vector<int64_t>> pos = {{0, 1}, {2, 3}, {0, 1}, {2, 0}};
  const std::vector<std::vector<int64_t>> labels = {{11, 12}, {13, -100}, {15, 16}, {-100, -100}};
  const std::vector<std::vector<float>> weights = {{.5f, .5f}, {.5f, 0.f}, {1.f, 1.f}, {0.f, 0.f}};
  for (int r = 0; r < 4; ++r) {
    train::MicroBatch s = train::slice_for_rank(full, 4, r);
    auto vec = [](const at::Tensor& t) { return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel()); };
    EXPECT_EQ(vec(s.in.input_ids.contiguous()), ids[size_t(r)]) << r;
    EXPECT_EQ(vec(s.in.position_ids.contiguous()), pos[size_t(r)]) << r;
    EXPECT_EQ(vec(s.labels.contiguous()), labels[size_t(r)]) << r;
    at::Tensor w = s.weights.contiguous();
    EXPECT_EQ(std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + 2), weights[size_t(r)]) << r;
    EXPECT_TRUE(torch::equal(s.in.cu_seqlens, torch::tensor({0, 4, 7, 8}, torch::kInt))) << r;
    EXPECT_EQ(s.in.max_seqlen, 4);
  }
  // A multiple of n is cut as it is.
  train::MicroBatch even = train::slice_for_rank(full, 7, 6);
  EXPECT_TRUE(torch::equal(even.in.cu_seqlens, full.in.cu_seqlens));
  EXPECT_EQ(even.in.input_ids.item<int64_t>(), 16);
}

// Outputs and q/k/v gradients of the exchange on n threads equal the unsplit attention's.
void check_exchange(int n, int64_t heads, int64_t kv_heads) {
  torch::manual_seed(7);
  const int64_t d = 8;
  const std::vector<int> lens = {5, 9, 3, 7};  // 24 tokens: sequences straddle every slice boundary
  std::vector<int> cu = {0};
  for (int l : lens) cu.push_back(cu.back() + l);
  const int64_t t = cu.back();
  ASSERT_EQ(t % n, 0);
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  at::Tensor q = torch::randn({t, heads, d}, f64), k = torch::randn({t, kv_heads, d}, f64),
             v = torch::randn({t, kv_heads, d}, f64), go = torch::randn({t, heads, d}, f64);
  at::Tensor cu_t = torch::tensor(cu, torch::kInt);
  const double scale = 1.0 / std::sqrt(double(d));
  auto attend = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu, int64_t m, double s) {
    return ops::varlen_attention_reference(q, k, v, cu, m, s, 4);
  };
  // The unsplit oracle.
  at::Tensor qa = q.clone().requires_grad_(), ka = k.clone().requires_grad_(), va = v.clone().requires_grad_();
  at::Tensor oa = attend(qa, ka, va, cu_t, 9, scale);
  oa.backward(go);

  const int64_t s = t / n;
  const size_t ranks_n = static_cast<size_t>(n);
  std::vector<at::Tensor> o(ranks_n), dq(ranks_n), dk(ranks_n), dv(ranks_n);
  auto group = std::make_shared<ThreadGroup>(n);
  std::vector<std::thread> ranks;
  for (int r = 0; r < n; ++r)
    ranks.emplace_back([&, r] {
      auto fn = train::ulysses_attention(attend, std::make_shared<ThreadRank>(group, r));
      at::Tensor qs = q.narrow(0, r * s, s).clone().requires_grad_(), ks = k.narrow(0, r * s, s).clone().requires_grad_(),
                 vs = v.narrow(0, r * s, s).clone().requires_grad_();
      at::Tensor os = fn(qs, ks, vs, cu_t, 9, scale);
      os.backward(go.narrow(0, r * s, s));
      o[size_t(r)] = os.detach(), dq[size_t(r)] = qs.grad(), dk[size_t(r)] = ks.grad(), dv[size_t(r)] = vs.grad();
    });
  for (auto& th : ranks) th.join();
  // The same sums in the same order per head: only the matmul blocking may differ (fp64).
  const double tol = 1e-12;
  EXPECT_LT((torch::cat(o) - oa).abs().max().item<double>(), tol);
  EXPECT_LT((torch::cat(dq) - qa.grad()).abs().max().item<double>(), tol);
  EXPECT_LT((torch::cat(dk) - ka.grad()).abs().max().item<double>(), tol);
  EXPECT_LT((torch::cat(dv) - va.grad()).abs().max().item<double>(), tol);
}

TEST(SequenceParallel, ExchangeEqualsUnsplitAttention) {
  check_exchange(2, 4, 2);  // kv heads split
  check_exchange(4, 8, 4);
}

TEST(SequenceParallel, ReplicatedKvHeadsEqualUnsplitAttention) {
  check_exchange(4, 4, 2);  // 2 kv heads over 4 ranks: each replicated twice, gradients summed back
  check_exchange(4, 8, 1);  // MQA
}

TEST(SequenceParallel, DegreesAModelAllows) {
  EXPECT_EQ(train::sequence_parallel_problem(32, 8, 8), "");
  EXPECT_EQ(train::sequence_parallel_problem(4, 2, 4), "");
  EXPECT_NE(train::sequence_parallel_problem(32, 8, 3).find("32 attention heads"), std::string::npos);
  EXPECT_NE(train::sequence_parallel_problem(24, 6, 4).find("6 key/value heads"), std::string::npos);
}

}  // namespace
