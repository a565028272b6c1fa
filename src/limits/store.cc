#include "limits/store.h"

namespace trl {
namespace {

void AppendEscaped(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : text) {
    if (c == '%' || c == '|' || c == '{' || c == '}') {
      out += '%';
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xF];
      out += kHex[static_cast<unsigned char>(c) & 0xF];
    } else {
      out += c;
    }
  }
}

std::string_view KindName(LimitKind kind) {
  switch (kind) {
    case LimitKind::kTokens:
      return "tokens";
    case LimitKind::kRequests:
      return "requests";
    case LimitKind::kConcurrent:
      return "concurrent";
  }
  return "?";
}

}  // namespace

std::string BucketRef::Id() const {
  std::string id;
  id.reserve(32 + scope_name.size() + model.size());
  id += scope == ScopeKind::kKey ? "k:" : "t:";
  AppendEscaped(scope_name, id);
  id += '|';
  id += KindName(kind);
  id += '|';
  id += std::to_string(period_micros);
  id += calendar ? "|c|" : "|r|";
  AppendEscaped(model, id);
  return id;
}

asio::awaitable<AdmitResult> SynchronousStore::Admit(const AdmitRequest& request) {
  co_return AdmitNow(request);
}

void SynchronousStore::SettleDetached(const SettleRequest& request, const asio::any_io_executor&,
                                      SettleCompletion& done) {
  done.Settled(SettleNow(request));
}

asio::awaitable<ReadResult> SynchronousStore::Read(const BucketsRequest& request) {
  co_return ReadNow(request);
}

asio::awaitable<StoreStatus> SynchronousStore::Reset(const BucketsRequest& request) {
  co_return ResetNow(request);
}

}  // namespace trl
