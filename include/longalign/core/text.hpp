// Small string helpers shared by the data and evaluation stages (prompt templates, replies).
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace longalign {

// `s` without leading and trailing spaces, tabs, carriage returns and newlines.
std::string trim(std::string_view s);

// Replaces each placeholder (e.g. "{question}") of `tmpl` by its value in one left-to-right
// pass, so text substituted in is never scanned for placeholders again.
std::string fill_placeholders(std::string_view tmpl, const std::vector<std::pair<std::string, std::string>>& values);

}  // namespace longalign
