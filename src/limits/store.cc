#include "limits/store.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

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

void Store::SettleDetached(const SettleRequest& request, const asio::any_io_executor& executor,
                           SettleCompletion& done) {
  auto settle = [](Store& store, const SettleRequest& request,
                   SettleCompletion& done) -> asio::awaitable<void> {
    done.Settled(co_await store.Settle(request));
  };
  asio::co_spawn(executor, settle(*this, request, done), asio::detached);
}

}  // namespace trl
