// A TensorBoard event-file writer for scalars, written by hand: each record is
// u64 length, masked CRC-32C of the length, an Event protobuf, masked CRC-32C of the data.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace longalign::train {

class TfEventsWriter {
 public:
  // Creates `dir`/events.out.tfevents.<unix time>.<host> and writes the file_version event.
  explicit TfEventsWriter(const std::filesystem::path& dir);
  void scalar(const std::string& tag, float value, int64_t step, double wall_time);
  void flush() { out_.flush(); }
  const std::filesystem::path& path() const { return path_; }

  // Exposed for tests.
  static std::string encode_scalar_event(const std::string& tag, float value, int64_t step, double wall_time);
  static std::string frame_record(const std::string& data);

 private:
  void write_record(const std::string& data);
  std::filesystem::path path_;
  std::ofstream out_;
};

uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace longalign::train
