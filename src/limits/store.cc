#include "limits/store.h"

#include "common/percent_encoding.h"
#include "config/limit_text.h"

namespace trl {
namespace {

// '|' separates the parts of an id, and braces would make a Redis hash tag of their own.
constexpr std::string_view kIdReserved = "|{}";

}  // namespace

std::string PerUserName(std::string_view owner, std::string_view user) {
  std::string name;
  name.reserve(owner.size() + 1 + user.size());
  name.append(owner).append(1, '\x1f').append(user);
  return name;
}

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
