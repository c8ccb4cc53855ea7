// The CPU execution harness. Warp operations follow one pattern: every lane publishes its
// operands into the warp's scratch, the warp meets at a barrier, each lane computes its own
// result from all lanes' operands exactly as the PTX fragment layouts prescribe, and the warp
// meets again so the scratch can be reused. Warps take turns between block barriers
// (WarpScheduler). cp.async copies poison their destination at issue (its contents are undefined
// while in flight) and land at the wait that covers their group; ldmatrix counts the
// shared-memory bank conflicts of its row addresses, so tests can check a tile layout's swizzle.
#include "longalign/kernels/cpu_harness.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "longalign/kernels/device_api.hpp"

namespace longalign::kernels {
namespace {

// The barrier of the 32 threads of a warp (its collectives meet here twice each). Only one warp
// runs at a time (WarpScheduler), so its threads spin with yield instead of sleeping: a futex
// sleep and wake per collective made the kernel tests several times slower.
class WarpBarrier {
 public:
  void arrive_and_wait() {
    const uint32_t gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == 31) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
    } else {
      while (gen_.load(std::memory_order_acquire) == gen) std::this_thread::yield();
    }
  }

 private:
  std::atomic<uint32_t> count_{0}, gen_{0};
};

struct WarpScratch {
  WarpBarrier barrier;
  std::array<float, 32> f{};
  std::array<std::array<uint32_t, 4>, 32> a{};
  std::array<std::array<uint32_t, 2>, 32> b{};
  std::array<const void*, 32> ptr{};
};

// Runs the warps of a block one at a time: the active warp runs until all its threads are at the
// block barrier or have exited, then hands over to the next warp; when no warp can run, the
// barrier opens. The order of warps reverses at every barrier. This is a legal GPU schedule (warps
// owe each other nothing between barriers) and the most hostile one for a missing barrier: a warp
// that overwrites shared memory another warp has yet to read does so before that warp runs, and a
// warp that reads another's data early reads it before it is written, in one direction or the other.
class WarpScheduler {
 public:
  explicit WarpScheduler(int warps) : cv_(warps), arrived_(warps), exited_(warps), state_(warps, kRunning) {}

  void start(int warp) {
    std::unique_lock lk(mu_);
    cv_[warp].wait(lk, [&] { return active_ == warp; });
  }
  void barrier(int warp) {
    std::unique_lock lk(mu_);
    const uint64_t gen = gen_;
    if (++arrived_[warp] + exited_[warp] == 32) block(warp, kAtBarrier);
    cv_[warp].wait(lk, [&] { return gen_ != gen && active_ == warp; });
  }
  void exit(int warp) {
    const std::lock_guard lk(mu_);
    ++exited_[warp];
    if (exited_[warp] == 32) block(warp, kDone);
    else if (arrived_[warp] + exited_[warp] == 32) block(warp, kAtBarrier);
  }

 private:
  enum State : char { kRunning, kAtBarrier, kDone };
  int size() const { return int(state_.size()); }
  int step(int w, int i) const { return forward_ ? (w + i) % size() : (w - i + size()) % size(); }

  void block(int warp, State s) {  // the active warp can go no further: pick who runs next
    state_[warp] = s;
    for (int i = 1; i <= size(); ++i)
      if (state_[step(warp, i)] == kRunning) return hand_over(step(warp, i));
    bool waiting = false;
    for (int w = 0; w < size(); ++w)
      if (state_[w] == kAtBarrier) state_[w] = kRunning, arrived_[w] = 0, waiting = true;
    if (!waiting) return;  // every warp has exited
    ++gen_;
    forward_ = !forward_;
    const int first = forward_ ? 0 : size() - 1;
    for (int i = 0; i < size(); ++i)
      if (state_[step(first, i)] == kRunning) return hand_over(step(first, i));
  }
  void hand_over(int warp) {
    active_ = warp;
    cv_[warp].notify_all();  // only that warp's threads wake
  }

  std::mutex mu_;
  std::vector<std::condition_variable> cv_;
  std::vector<int> arrived_, exited_;
  std::vector<State> state_;
  int active_ = 0;
  bool forward_ = true;
  uint64_t gen_ = 0;
};

struct BlockState {
  BlockState(int threads, const char* smem) : scheduler(threads / 32), warps(threads / 32), smem(smem) {}
  WarpScheduler scheduler;
  std::vector<WarpScratch> warps;
  const char* smem;
};

struct AsyncCopy {
  void* dst;
  const void* src;
  int bytes;
  bool valid;
};

struct ThreadContext {
  int tid = 0, bx = 0, by = 0;
  BlockState* block = nullptr;
  std::vector<AsyncCopy> open;                    // issued, not yet committed
  std::vector<std::vector<AsyncCopy>> committed;  // oldest first
  WarpScratch& warp() const { return block->warps[tid / 32]; }
  int lane() const { return tid % 32; }
};

thread_local ThreadContext t_ctx;
std::atomic<uint64_t> g_ldmatrix{0}, g_bank_conflicts{0};

[[noreturn]] void fault(const std::string& what) { throw std::runtime_error("cpu harness: " + what); }

float bf16_to_float(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint16_t half_of(uint32_t reg, int i) { return uint16_t(i == 0 ? reg & 0xFFFF : reg >> 16); }

}  // namespace

int thread_x() { return t_ctx.tid; }
int block_x() { return t_ctx.bx; }
int block_y() { return t_ctx.by; }
void sync_threads() { t_ctx.block->scheduler.barrier(t_ctx.tid / 32); }

float shfl_xor(float v, int mask) {
  WarpScratch& w = t_ctx.warp();
  w.f[t_ctx.lane()] = v;
  w.barrier.arrive_and_wait();
  const float r = w.f[t_ctx.lane() ^ mask];
  w.barrier.arrive_and_wait();
  return r;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) bits = sign | 0x7F800000u | (man << 13);  // inf / nan
  else if (exp != 0) bits = sign | ((exp + 112) << 23) | (man << 13);
  else if (man == 0) bits = sign;
  else {  // subnormal: normalise
    int e = -1;
    uint32_t m = man;
    do ++e, m <<= 1; while (!(m & 0x400));
    bits = sign | ((112 - e) << 23) | ((m & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {  // round to nearest even, with subnormals and overflow to inf
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  const int32_t exp = int32_t((x >> 23) & 0xFF) - 127 + 15;
  uint32_t man = x & 0x7FFFFF;
  if (((x >> 23) & 0xFF) == 0xFF) return uint16_t(sign | 0x7C00 | (man ? 0x200 : 0));
  if (exp >= 0x1F) return uint16_t(sign | 0x7C00);
  if (exp <= 0) {
    if (exp < -10) return sign;
    man |= 0x800000;
    const int shift = 14 - exp;
    uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = (uint32_t(exp) << 10) | (man >> 13);
  const uint32_t rem = man & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;  // may carry into the exponent: still correct
  return uint16_t(sign | r);
}

namespace {
template <float (*Conv)(uint16_t)>
void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  WarpScratch& w = t_ctx.warp();
  const int lane = t_ctx.lane();
  for (int i = 0; i < 4; ++i) w.a[lane][i] = a[i];
  for (int i = 0; i < 2; ++i) w.b[lane][i] = b[i];
  w.barrier.arrive_and_wait();
  // A[row][k] and B[k][col], recovered from the owning lanes' registers.
  auto A = [&](int row, int k) {
    const int g = row % 8, t = (k % 8) / 2, reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
    return Conv(half_of(w.a[g * 4 + t][reg], k % 2));
  };
  auto B = [&](int k, int col) {
    const int t = (k % 8) / 2, reg = k >= 8 ? 1 : 0;
    return Conv(half_of(w.b[col * 4 + t][reg], k % 2));
  };
  const int g = lane / 4, t = lane % 4;
  const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  float out[4];
  for (int i = 0; i < 4; ++i) {
    float acc = c[i];
    for (int k = 0; k < 16; ++k) acc += A(rows[i], k) * B(k, cols[i]);  // 16-bit products are exact in fp32
    out[i] = acc;
  }
  w.barrier.arrive_and_wait();
  for (int i = 0; i < 4; ++i) d[i] = out[i];
}
}  // namespace

void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  mma_m16n8k16<bf16_to_float>(d, a, b, c);
}
void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  mma_m16n8k16<f16_to_f32>(d, a, b, c);
}

namespace {
// Extra shared-memory wavefronts one 8-row matrix of an ldmatrix costs: rows are 16-byte reads,
// so each covers the 4 banks of its 16-byte slot (offset / 16 mod 8); distinct rows in one slot
// serialize.
int matrix_bank_conflicts(const std::array<const void*, 32>& ptr, int m, const char* smem) {
  std::array<std::vector<std::ptrdiff_t>, 8> slots;
  for (int r = 0; r < 8; ++r) {
    const std::ptrdiff_t off = static_cast<const char*>(ptr[m * 8 + r]) - smem;
    auto& s = slots[(off / 16) % 8];
    if (std::find(s.begin(), s.end(), off) == s.end()) s.push_back(off);
  }
  size_t worst = 1;
  for (const auto& s : slots) worst = std::max(worst, s.size());
  return int(worst) - 1;
}

void ldmatrix(uint32_t r[4], const void* row_ptr, bool trans) {
  WarpScratch& w = t_ctx.warp();
  const int lane = t_ctx.lane();
  if ((static_cast<const char*>(row_ptr) - t_ctx.block->smem) % 16 != 0) fault("ldmatrix row address not 16-byte aligned");
  w.ptr[lane] = row_ptr;
  w.barrier.arrive_and_wait();
  if (lane == 0) {
    int conflicts = 0;
    for (int m = 0; m < 4; ++m) conflicts += matrix_bank_conflicts(w.ptr, m, t_ctx.block->smem);
    g_ldmatrix += 1;
    g_bank_conflicts += conflicts;
  }
  auto elem = [&](int m, int row, int col) {  // matrix m, 8 rows of 8 b16 values
    uint16_t v;
    std::memcpy(&v, static_cast<const char*>(w.ptr[m * 8 + row]) + 2 * col, 2);
    return uint32_t(v);
  };
  for (int m = 0; m < 4; ++m) {
    const int q = lane / 4, p = 2 * (lane % 4);
    r[m] = trans ? elem(m, p, q) | (elem(m, p + 1, q) << 16) : elem(m, q, p) | (elem(m, q, p + 1) << 16);
  }
  w.barrier.arrive_and_wait();
}

void cp_async(void* smem, const void* gmem, int bytes, bool valid) {
  if ((static_cast<const char*>(smem) - t_ctx.block->smem) % bytes != 0 || reinterpret_cast<uintptr_t>(gmem) % bytes != 0)
    fault("cp.async of " + std::to_string(bytes) + " bytes with a misaligned address");
  std::memset(smem, 0xFF, size_t(bytes));  // in flight: undefined until the wait (0xFFFF is NaN in bf16 and fp16)
  t_ctx.open.push_back({smem, gmem, bytes, valid});
}
}  // namespace

void ldmatrix_x4(uint32_t r[4], const void* smem_row) { ldmatrix(r, smem_row, false); }
void ldmatrix_x4_trans(uint32_t r[4], const void* smem_row) { ldmatrix(r, smem_row, true); }
void cp_async_16(void* smem, const void* gmem, bool valid) { cp_async(smem, gmem, 16, valid); }
void cp_async_4(void* smem, const void* gmem, bool valid) { cp_async(smem, gmem, 4, valid); }
void copy_16(void* dst, const void* src) {
  if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || reinterpret_cast<uintptr_t>(src) % 16 != 0)
    fault("16-byte copy with a misaligned address");
  std::memcpy(dst, src, 16);
}
void atomic_add_f32(float* addr, float v) {
  auto* bits = reinterpret_cast<uint32_t*>(addr);
  uint32_t old = __atomic_load_n(bits, __ATOMIC_RELAXED), next;
  do {
    float f;
    std::memcpy(&f, &old, 4);
    f += v;
    std::memcpy(&next, &f, 4);
  } while (!__atomic_compare_exchange_n(bits, &old, next, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}
void cp_async_commit() {
  t_ctx.committed.push_back(std::move(t_ctx.open));
  t_ctx.open.clear();
}
void cp_async_wait_group(int n) {
  auto& groups = t_ctx.committed;
  const size_t done = groups.size() > size_t(n) ? groups.size() - size_t(n) : 0;
  for (size_t i = 0; i < done; ++i)
    for (const AsyncCopy& c : groups[i])
      if (c.valid) std::memcpy(c.dst, c.src, size_t(c.bytes));
      else std::memset(c.dst, 0, size_t(c.bytes));
  groups.erase(groups.begin(), groups.begin() + std::ptrdiff_t(done));
}

HarnessCounters harness_counters() { return {g_ldmatrix.load(), g_bank_conflicts.load()}; }
void reset_harness_counters() { g_ldmatrix = 0, g_bank_conflicts = 0; }

void launch_on_cpu(Dim2 grid, int block_threads, size_t shared_bytes, const std::function<void(char*)>& body) {
  if (block_threads <= 0 || block_threads % 32 != 0)
    throw std::invalid_argument("launch_on_cpu: block_threads must be a positive multiple of 32 (whole warps)");
  for (int by = 0; by < grid.y; ++by)
    for (int bx = 0; bx < grid.x; ++bx) {
      std::vector<char> smem(shared_bytes, 0);
      BlockState state(block_threads, smem.data());
      std::vector<std::thread> threads;
      threads.reserve(block_threads);
      // An exception escaping a kernel thread terminates the process, as a device fault would:
      // the other threads could otherwise wait at a barrier forever.
      for (int tid = 0; tid < block_threads; ++tid)
        threads.emplace_back([&, tid] {
          t_ctx = ThreadContext{tid, bx, by, &state, {}, {}};
          state.scheduler.start(tid / 32);
          body(smem.data());
          state.scheduler.exit(tid / 32);
        });
      for (auto& t : threads) t.join();
    }
}

}  // namespace longalign::kernels
