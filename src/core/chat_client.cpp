// libcurl-based chat-completions client. Without libcurl at build time every request fails
// with a message saying so (the GPU machine, for instance, builds without it).
#include "longalign/core/chat_client.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "longalign/core/log.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/text.hpp"

#ifdef LONGALIGN_HAVE_CURL
#include <curl/curl.h>
#endif

namespace longalign {
namespace {

struct HttpResult {
  long status = 0;  // 0: transport failure
  std::string body, error;
  double retry_after_s = 0;
  bool permanent = false;  // a transport failure that no retry can fix (a malformed URL)
  bool too_large = false;  // the reply passed max_reply_bytes and was cut off
  uint64_t max_bytes = kDefaultMaxReplyBytes;
};

#ifdef LONGALIGN_HAVE_CURL
// Returning less than given makes libcurl abort the transfer (CURLE_WRITE_ERROR), so a reply
// without a Content-Length is stopped at the cap instead of read to the end.
size_t collect(char* p, size_t size, size_t n, void* out) {
  auto* r = static_cast<HttpResult*>(out);
  if (r->body.size() + size * n > r->max_bytes) {
    r->too_large = true;
    return 0;
  }
  r->body.append(p, size * n);
  return size * n;
}

size_t header(char* p, size_t size, size_t n, void* out) {
  std::string line(p, size * n);
  const std::string key = "retry-after:";
  std::string lower = line.substr(0, key.size());
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (lower == key) {
    const std::string value = trim(std::string_view(line).substr(key.size()));
    double s = 0;
    if (!value.empty() && std::isdigit(static_cast<unsigned char>(value[0]))) {
      s = std::strtod(value.c_str(), nullptr);
    } else if (time_t when = curl_getdate(value.c_str(), nullptr); when > 0) {  // an HTTP date
      s = double(when - std::time(nullptr));
    }
    static_cast<HttpResult*>(out)->retry_after_s = std::isfinite(s) ? std::clamp(s, 0.0, kMaxRetryWaitS) : 0.0;
  }
  return size * n;
}

HttpResult post_json(const ChatOptions& o, const std::string& body) {
  static const bool init = curl_global_init(CURL_GLOBAL_DEFAULT) == 0;
  HttpResult r;
  r.max_bytes = o.max_reply_bytes;
  CURL* c = init ? curl_easy_init() : nullptr;
  if (!c) return {0, "", "cannot initialise libcurl"};
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for long bodies
  if (!o.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + o.api_key).c_str());
  curl_easy_setopt(c, CURLOPT_URL, o.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(o.timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // timeouts without signals: safe in threads
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  // Refused up front when the server announces a larger reply (libcurl checks Content-Length).
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(std::min<uint64_t>(o.max_reply_bytes, INT64_MAX)));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  else r.error = curl_easy_strerror(rc);
  if (r.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    r.too_large = true;
    r.status = 0;
    r.body.clear();
    r.error = "the reply is larger than " + std::to_string(o.max_reply_bytes) +
              " bytes (a chat reply is a few KiB: is this the chat-completions URL?); raise the cap with --max-reply-bytes";
  }
  // A retry would only fetch the same oversized reply again.
  r.permanent = rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL || r.too_large;
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}
#else
HttpResult post_json(const ChatOptions&, const std::string&) {
  return {0, "", "this longalign was built without libcurl (install libcurl4-openssl-dev and rebuild)"};
}
#endif

std::string describe(const HttpResult& r) {
  return r.status ? "HTTP " + std::to_string(r.status) + (r.body.empty() ? "" : ": " + truncate_for_message(r.body, 200)) : r.error;
}

}  // namespace

bool chat_available() {
#ifdef LONGALIGN_HAVE_CURL
  return true;
#else
  return false;
#endif
}

ChatReply chat(const ChatOptions& o, const std::vector<ChatMessage>& messages) {
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::json req = {{"model", o.model}, {"temperature", o.temperature}, {"max_tokens", o.max_tokens},
                        {"messages", std::move(msgs)}};
  const std::string body = req.dump();
  ChatReply reply;
  HttpResult r;
  double wait_ms = o.backoff_ms;
  for (int attempt = 0;; ++attempt) {
    r = post_json(o, body);
    const bool transient = (r.status == 0 && !r.permanent) || r.status == 408 || r.status == 429 || r.status >= 500;
    if (!transient || attempt == o.max_retries || !chat_available()) break;
    const double wait = std::min(std::max(wait_ms, r.retry_after_s * 1000), kMaxRetryWaitS * 1000);
    log::warn("chat request to " + o.url + " failed (" + describe(r).substr(0, 80) + "); retry " +
              std::to_string(attempt + 1) + "/" + std::to_string(o.max_retries) + " in " + std::to_string(long(wait)) +
              " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(long(wait)));
    wait_ms = std::min(wait_ms * 2, kMaxRetryWaitS * 1000);
    reply.retries += 1;
  }
  reply.status = r.status;
  if (r.status != 200) {
    reply.error = describe(r) + (reply.retries ? " (after " + std::to_string(reply.retries) + " retries)" : "");
    return reply;
  }
  try {
    check_json_depth(r.body, "the reply of " + o.url);
  } catch (const std::exception& e) {
    reply.error = e.what();
    return reply;
  }
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  try {
    const auto& choice = j.at("choices").at(0);
    const auto& content = choice.at("message").at("content");
    if (content.is_null() || choice.value("finish_reason", nlohmann::json("")) == "content_filter") {
      reply.filtered = true;
      reply.error = "the endpoint withheld the reply (content filter or refusal)";
      return reply;
    }
    reply.content = content.get<std::string>();
  } catch (const std::exception&) {
    reply.error = "malformed chat-completions response: " + truncate_for_message(r.body, 200);
    return reply;
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    const auto& u = j["usage"];
    auto count = [&](const char* key) { return u.contains(key) && u[key].is_number_unsigned() ? u[key].get<uint64_t>() : 0; };
    reply.prompt_tokens = count("prompt_tokens");
    reply.completion_tokens = count("completion_tokens");
  }
  return reply;
}

}  // namespace longalign
