// Minimal protobuf encoding of tensorflow.Event { double wall_time = 1; int64 step = 2;
// string file_version = 3; Summary summary = 5 }, Summary { repeated Value value = 1 },
// Value { string tag = 1; float simple_value = 2 }.
#include "longalign/train/tfevents.hpp"

#include <unistd.h>

#include <chrono>
#include <cstring>

#include "longalign/core/crc32c.hpp"
#include "longalign/core/error.hpp"

namespace longalign::train {
namespace {

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void tag(std::string& out, int field, int wire) { varint(out, (uint64_t(field) << 3) | wire); }

void bytes_field(std::string& out, int field, const std::string& s) {
  tag(out, field, 2);
  varint(out, s.size());
  out += s;
}

template <typename T>
void fixed(std::string& out, int field, int wire, T v) {
  tag(out, field, wire);
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

std::string event_header(double wall_time, int64_t step) {
  std::string e;
  fixed(e, 1, 1, wall_time);
  tag(e, 2, 0);
  varint(e, static_cast<uint64_t>(step));
  return e;
}

}  // namespace

uint32_t masked_crc32c(const void* data, size_t n) {
  uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string TfEventsWriter::frame_record(const std::string& data) {
  std::string r;
  uint64_t len = data.size();
  char lenbuf[8];
  std::memcpy(lenbuf, &len, 8);
  r.append(lenbuf, 8);
  uint32_t c = masked_crc32c(lenbuf, 8);
  r.append(reinterpret_cast<const char*>(&c), 4);
  r += data;
  c = masked_crc32c(data.data(), data.size());
  r.append(reinterpret_cast<const char*>(&c), 4);
  return r;
}

std::string TfEventsWriter::encode_scalar_event(const std::string& name, float value, int64_t step, double wall_time) {
  std::string val;
  bytes_field(val, 1, name);
  fixed(val, 2, 5, value);
  std::string summary;
  bytes_field(summary, 1, val);
  std::string e = event_header(wall_time, step);
  bytes_field(e, 5, summary);
  return e;
}

TfEventsWriter::TfEventsWriter(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  auto now = std::chrono::system_clock::now();
  double wall = std::chrono::duration<double>(now.time_since_epoch()).count();
  path_ = dir / ("events.out.tfevents." + std::to_string(int64_t(wall)) + "." + host);
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw RuntimeError("cannot create " + path_.string());
  std::string e = event_header(wall, 0);
  bytes_field(e, 3, "brain.Event:2");
  write_record(e);
}

void TfEventsWriter::scalar(const std::string& name, float value, int64_t step, double wall_time) {
  write_record(encode_scalar_event(name, value, step, wall_time));
}

void TfEventsWriter::write_record(const std::string& data) {
  std::string r = frame_record(data);
  out_.write(r.data(), r.size());
  if (!out_) throw RuntimeError("write failed for " + path_.string());
}

}  // namespace longalign::train
