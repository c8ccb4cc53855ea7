// A client for OpenAI-compatible chat-completions endpoints, shared by the LLM judge and by
// `selfinstruct`. Transport errors (but a malformed URL), timeouts, 408, 429 and 5xx are retried
// with exponential backoff; a longer Retry-After (seconds or an HTTP date) wins; every wait is
// capped at kMaxRetryWaitS. Other statuses fail at once. Safe to call from several threads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace longalign {

constexpr double kMaxRetryWaitS = 120;
// A chat reply is a few KiB of JSON; a server streaming without end would otherwise fill memory.
constexpr uint64_t kDefaultMaxReplyBytes = uint64_t{16} << 20;

struct ChatOptions {
  std::string url;      // e.g. https://api.openai.com/v1/chat/completions
  std::string model;
  std::string api_key;  // sent as a Bearer token when not empty
  int max_retries = 5;
  int backoff_ms = 1000;  // first wait; doubles each retry
  double timeout_s = 120;
  double temperature = 0;
  int max_tokens = 512;
  uint64_t max_reply_bytes = kDefaultMaxReplyBytes;  // a longer reply is cut off and refused (not retried)
};

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

struct ChatReply {
  std::string content;  // the first choice's message text
  std::string error;    // empty on success; otherwise why, after the retries
  long status = 0;      // the last HTTP status; 0 when no response arrived
  int retries = 0;
  uint64_t prompt_tokens = 0, completion_tokens = 0;  // from `usage`, when the server reports it
  bool filtered = false;  // the server withheld the content (null content or a content filter)
  bool ok() const { return error.empty(); }
};

ChatReply chat(const ChatOptions& o, const std::vector<ChatMessage>& messages);

// False when this build has no libcurl: chat() then fails with a message saying so.
bool chat_available();

}  // namespace longalign
