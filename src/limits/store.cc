#include "limits/store.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "common/percent_encoding.h"
#include "config/limit_text.h"

namespace trl {
namespace {

// '|' separates the parts of an id, and braces would make a Redis hash tag of their own.
constexpr std::string_view kIdReserved = "|{}";

}  // namespace

std::string BucketRef::Id() const {
  std::string id;
  id.reserve(32 + scope_name.size() + model.size());
  id += scope == ScopeKind::kKey ? "k:" : "t:";
  AppendPercentEncoded(scope_name, kIdReserved, id);
  id += '|';
  id += LimitKindName(kind);
  id += '|';
  id += std::to_string(period_micros);
  id += calendar ? "|c|" : "|r|";
  AppendPercentEncoded(model, kIdReserved, id);
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
