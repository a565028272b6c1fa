// An http::ResponseWriter that keeps what a handler answers instead of writing it to a socket:
// the status, the head (the response's fields and the handler's pre-formatted head lines) and
// the body (a whole response's, or a stream's chunks joined). Tests read those, and play the
// client: one that leaves (after some chunks, or by hanging up while watched) or a shutdown's cut.
//
// Threading: like a connection, used on one thread by one handler at a time.
#pragma once

#include <boost/beast/core/string.hpp>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "http/server.h"

namespace trl {

class FakeResponseWriter final : public http::ResponseWriter {
 public:
  explicit FakeResponseWriter(std::string request_id = "req-1")
      : request_id_(std::move(request_id)) {}

  // What the handler answered. status 0: nothing yet.
  unsigned status() const { return status_; }
  const std::string& body() const { return body_; }
  bool streamed() const { return streamed_; }
  bool finished() const { return finished_; }  // a whole response, or a stream's last chunk
  // A head field by name (case-insensitive), "" when absent: from the response or the head lines.
  std::string Header(std::string_view name) const {
    auto it = headers_.find(std::string(name));
    return it == headers_.end() ? std::string() : it->second;
  }
  bool HasHeader(std::string_view name) const { return headers_.count(std::string(name)) != 0; }
  int sends() const { return sends_; }

  // The client leaves once it has received `chunks` stream chunks: the next write fails.
  void LeaveAfterChunks(int chunks) { leave_after_chunks_ = chunks; }
  // The client hangs up now: a watching handler is told (as the server's poll would).
  void HangUp() {
    gone_client_ = true;
    NotifyGone();
  }
  // The server cuts the response (a shutdown's grace is over): Cut() turns true, the watcher is
  // told, and the client is still there.
  void CutNow() {
    cut_ = true;
    NotifyGone();
  }
  bool watching() const { return static_cast<bool>(gone_); }

  asio::awaitable<bool> Send(http::Response response, std::string_view head_lines) override {
    ++sends_;
    if (gone_client_) co_return false;
    status_ = response.result_int();
    for (const auto& field : response) headers_[std::string(field.name_string())] = field.value();
    AddHeadLines(head_lines);
    body_ = std::move(response.body());
    finished_ = true;
    co_return true;
  }
  asio::awaitable<bool> StartStream(unsigned status, http::Fields headers,
                                    std::string_view head_lines) override {
    if (gone_client_) co_return false;
    status_ = status;
    streamed_ = true;
    for (const auto& field : headers) headers_[std::string(field.name_string())] = field.value();
    AddHeadLines(head_lines);
    co_return true;
  }
  asio::awaitable<bool> WriteChunk(std::string_view data) override {
    if (gone_client_ || !streamed_) co_return false;
    if (leave_after_chunks_ >= 0 && chunks_ >= leave_after_chunks_) {
      gone_client_ = true;
      co_return false;
    }
    ++chunks_;
    body_.append(data);
    co_return true;
  }
  asio::awaitable<bool> FinishStream() override {
    if (gone_client_ || !streamed_) co_return false;
    finished_ = true;
    co_return true;
  }
  void WatchClient(std::function<void()> gone) override { gone_ = std::move(gone); }
  void UnwatchClient() override { gone_ = nullptr; }
  bool Cut() const override { return cut_; }
  std::string_view RequestId() const override { return request_id_; }
  std::string_view ClientAddress() const override { return "127.0.0.1"; }

 private:
  struct Caseless {
    bool operator()(const std::string& a, const std::string& b) const {
      return boost::beast::iless()(a, b);
    }
  };

  void AddHeadLines(std::string_view lines) {
    while (!lines.empty()) {
      const size_t end = lines.find("\r\n");
      std::string_view line = lines.substr(0, end);
      const size_t colon = line.find(": ");
      headers_[std::string(line.substr(0, colon))] = std::string(line.substr(colon + 2));
      lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 2);
    }
  }
  void NotifyGone() {
    if (!gone_) return;
    auto gone = std::move(gone_);  // at most once
    gone_ = nullptr;
    gone();
  }

  std::string request_id_;
  unsigned status_ = 0;
  std::map<std::string, std::string, Caseless> headers_;
  std::string body_;
  bool streamed_ = false;
  bool finished_ = false;
  int sends_ = 0;
  int chunks_ = 0;
  int leave_after_chunks_ = -1;
  bool gone_client_ = false;
  bool cut_ = false;
  std::function<void()> gone_;
};

}  // namespace trl
