// spdlog-backed implementation of the logging facade; logs go to stderr so stdout stays data.
#include "longalign/core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace longalign::log {
namespace {
spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stderr_color_mt("longalign");
    lg->set_pattern("[%H:%M:%S] %^%l%$ %v");
    return lg;
  }();
  return *l;
}
}  // namespace

void set_level(Level level) {
  static const spdlog::level::level_enum map[] = {spdlog::level::debug, spdlog::level::info,
                                                  spdlog::level::warn, spdlog::level::err,
                                                  spdlog::level::off};
  logger().set_level(map[static_cast<int>(level)]);
}
void debug(const std::string& msg) { logger().debug(msg); }
void info(const std::string& msg) { logger().info(msg); }
void warn(const std::string& msg) { logger().warn(msg); }
void error(const std::string& msg) { logger().error(msg); }

}  // namespace longalign::log
