// "Did you mean" for config keys and names: the candidate nearest by edit distance.
#pragma once
#include <string>
#include <vector>

namespace longalign {

size_t edit_distance(const std::string& a, const std::string& b);

// The closest candidate, or "" when none is within half the word's length (+2).
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace longalign
