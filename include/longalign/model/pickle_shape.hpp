// The shape of a PyTorch pickle (the data.pkl of a .bin checkpoint), checked before LibTorch
// unpickles it: a hostile file cannot nest deeper than a state dict needs or point past its end.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace longalign::model {

// A state dict nests a few levels (dict -> tensor -> argument tuple -> shape tuple); LibTorch's
// values free themselves recursively, so a deep pickle would exhaust the stack.
constexpr int kMaxPickleDepth = 64;

// The pickle's shape, checked by simulating its stack machine without building anything:
// every opcode is one LibTorch's unpickler knows, every length lies inside `size`, nesting stays
// within kMaxPickleDepth and no container is changed after it was placed inside another (which
// Python's pickler never does, and which would let nesting grow unseen). RuntimeError naming
// `what` and the byte offset otherwise. Torch-free, so it can be tested and fuzzed alone.
void check_pickle_shape(const uint8_t* data, size_t size, const std::string& what);

}  // namespace longalign::model
