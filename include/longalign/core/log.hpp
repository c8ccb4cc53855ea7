// Thin logging facade over spdlog. Kept string-only so translation units that include torch
// (which ships its own fmt) never see Debian's fmt through spdlog.
#pragma once
#include <string>

namespace longalign::log {

enum class Level { debug, info, warn, error, off };

void set_level(Level level);
void debug(const std::string& msg);
void info(const std::string& msg);
void warn(const std::string& msg);
void error(const std::string& msg);

}  // namespace longalign::log
