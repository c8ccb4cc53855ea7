// The shape check of a PyTorch pickle (see pickle_shape.hpp): its stack machine simulated
// without building anything, torch-free so that it is unit-tested and fuzzed alone.
#include "longalign/model/pickle_shape.hpp"

#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "longalign/core/error.hpp"

namespace longalign::model {
namespace {

// One value on the simulated pickle stack.
struct PickleObj {
  int depth = 0;        // 0: a scalar; containers 1 + their deepest child
  bool nested = false;  // placed inside another object
};

class PickleShape {
 public:
  PickleShape(const uint8_t* d, size_t n, const std::string& what) : d_(d), n_(n), what_(what) {}

  void run() {
    while (pos_ < n_) {
      op_at_ = pos_;
      const uint8_t op = d_[pos_++];
      switch (op) {
        case '(': marks_.push_back(stack_.size()); break;                     // MARK
        case '.': return;                                                      // STOP
        case '0': if (!marks_.empty() && marks_.back() == stack_.size()) marks_.pop_back(); else pop(); break;  // POP
        case '1': pop_to_mark(); break;                                        // POP_MARK
        case '2': push_existing(top()); break;                                 // DUP
        case 'F': case 'I': case 'L': case 'S': case 'V': line(); leaf(); break;
        case 'P': line(); leaf(); break;                                       // PERSID
        case 'J': skip(4); leaf(); break;
        case 'K': skip(1); leaf(); break;
        case 'M': skip(2); leaf(); break;
        case 'G': skip(8); leaf(); break;                                      // BINFLOAT
        case 'N': case 0x88: case 0x89: leaf(); break;                         // NONE, NEWTRUE, NEWFALSE
        case 'T': case 'X': case 'B': skip(len(4)); leaf(); break;             // BINSTRING, BINUNICODE, BINBYTES
        case 'U': case 'C': case 0x8c: skip(len(1)); leaf(); break;            // SHORT_BINSTRING/BYTES/UNICODE
        case 0x8d: case 0x8e: skip(len(8)); leaf(); break;                     // BINUNICODE8, BINBYTES8
        case 0x8a: skip(len(1)); leaf(); break;                                // LONG1
        case 0x8b: skip(len(4)); leaf(); break;                                // LONG4
        case 'c': line(); line(); leaf(); break;                               // GLOBAL
        case 0x93: pop(); pop(); leaf(); break;                                // STACK_GLOBAL
        case 0x80: skip(1); break;                                             // PROTO
        case 0x95: skip(8); break;                                             // FRAME
        case '}': case ']': case ')': make({}); break;                         // EMPTY_DICT/LIST/TUPLE
        case 't': case 'l': case 'd': make(pop_to_mark()); break;              // TUPLE, LIST, DICT
        case 0x85: make(pop_n(1)); break;
        case 0x86: make(pop_n(2)); break;
        case 0x87: make(pop_n(3)); break;
        case 'Q': make(pop_n(1)); break;                                       // BINPERSID
        case 'R': case 0x81: make(pop_n(2)); break;                            // REDUCE, NEWOBJ
        case 'a': case 'b': {                                                  // APPEND, BUILD
          const size_t target = top_below(1);
          add_to(target, pop_n(1));
          break;
        }
        case 's': {                                                            // SETITEM
          const size_t target = top_below(2);
          add_to(target, pop_n(2));
          break;
        }
        case 'e': case 'u': {                                                  // APPENDS, SETITEMS
          auto items = pop_to_mark();
          add_to(top(), items);
          break;
        }
        case 'g': memo_get(std::stoull(number(line()))); break;
        case 'h': memo_get(len(1)); break;
        case 'j': memo_get(len(4)); break;
        case 'p': memo_put(std::stoull(number(line()))); break;
        case 'q': memo_put(len(1)); break;
        case 'r': memo_put(len(4)); break;
        case 0x94: memo_put(memo_.size()); break;                              // MEMOIZE
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("opcode ") + hex + ", which a state dict of tensors never uses");
        }
      }
    }
    fail("no STOP opcode before the end");
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw RuntimeError(what_ + ": its pickle (data.pkl) is malformed at byte " + std::to_string(op_at_) + ": " + why +
                       "; it is not a state dict as torch.save writes it (re-save it, or convert it to safetensors)");
  }
  void skip(uint64_t k) {
    if (k > n_ - pos_) fail("a length runs past the end of the pickle");
    pos_ += size_t(k);
  }
  uint64_t len(int bytes) {
    if (size_t(bytes) > n_ - pos_) fail("an argument runs past the end of the pickle");
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | d_[pos_ + size_t(i)];  // little-endian
    pos_ += size_t(bytes);
    return v;
  }
  std::string line() {
    const void* nl = std::memchr(d_ + pos_, '\n', n_ - pos_);
    if (!nl) fail("a text argument has no end of line");
    const size_t end = size_t(static_cast<const uint8_t*>(nl) - d_);
    std::string out(reinterpret_cast<const char*>(d_ + pos_), end - pos_);
    pos_ = end + 1;
    return out;
  }
  std::string number(const std::string& s) const {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) fail("a memo index is not a number");
    return s;
  }
  size_t top() const { return top_below(0); }
  size_t top_below(size_t k) const {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + k + 1) fail("the stack is empty where a value is needed");
    return stack_[stack_.size() - 1 - k];
  }
  void pop() { pop_n(1); }
  std::vector<size_t> pop_n(size_t k) {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + k) fail("the stack is empty where a value is needed");
    std::vector<size_t> out(stack_.end() - long(k), stack_.end());
    stack_.resize(stack_.size() - k);
    return out;
  }
  std::vector<size_t> pop_to_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    std::vector<size_t> out(stack_.begin() + long(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return out;
  }
  void push_existing(size_t id) { stack_.push_back(id); }
  void leaf() {
    objs_.push_back({});
    stack_.push_back(objs_.size() - 1);
  }
  // A new object built from `children` (a tuple, a REDUCE result, a storage from its id).
  void make(const std::vector<size_t>& children) {
    PickleObj o;
    o.depth = 1;
    for (size_t c : children) {
      o.depth = std::max(o.depth, objs_[c].depth + 1);
      objs_[c].nested = true;
    }
    if (o.depth > kMaxPickleDepth) fail("values nest deeper than " + std::to_string(kMaxPickleDepth) + " levels");
    objs_.push_back(o);
    stack_.push_back(objs_.size() - 1);
  }
  void add_to(size_t target, const std::vector<size_t>& children) {
    if (objs_[target].nested) fail("a value is changed after it was placed inside another");
    for (size_t c : children) {
      if (c == target) fail("a container is placed inside itself");
      objs_[target].depth = std::max(objs_[target].depth, objs_[c].depth + 1);
      objs_[c].nested = true;
    }
    if (objs_[target].depth > kMaxPickleDepth) fail("values nest deeper than " + std::to_string(kMaxPickleDepth) + " levels");
  }
  void memo_get(uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) fail("a memo entry is read before it is written");
    stack_.push_back(it->second);
  }
  void memo_put(uint64_t i) { memo_[i] = top(); }

  const uint8_t* d_;
  size_t n_, pos_ = 0, op_at_ = 0;
  const std::string& what_;
  std::vector<PickleObj> objs_;
  std::vector<size_t> stack_, marks_;
  std::unordered_map<uint64_t, size_t> memo_;
};

}  // namespace

void check_pickle_shape(const uint8_t* data, size_t size, const std::string& what) {
  PickleShape(data, size, what).run();
}

}  // namespace longalign::model
