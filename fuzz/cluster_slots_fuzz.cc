// Redis Cluster's topology as a server reports it (redis/cluster_slots.h): the input is RESP
// bytes; every reply in it is read as a CLUSTER SLOTS reply and as a MOVED / ASK redirection.
// Also the slot of the input taken as a key.
//
// A slot map holds slots 0-16383 only, first <= last, and never an empty host.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "redis/cluster_slots.h"
#include "redis/resp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace redis = trl::redis;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  TRL_FUZZ_CHECK(redis::KeySlot(bytes) < redis::kSlotCount);

  redis::ReplyReader reader;
  if (!reader.Feed(bytes.data(), bytes.size())) return 0;
  bool ok = true;
  while (redis::ReplyPtr reply = reader.Next(&ok)) {
    if (auto slots = redis::ParseClusterSlots(*reply, "10.0.0.7")) {
      for (const redis::SlotRange& range : *slots) {
        TRL_FUZZ_CHECK(range.first <= range.last && range.last < redis::kSlotCount);
        TRL_FUZZ_CHECK(!range.host.empty());
      }
    }
    if (auto redirect = redis::ParseRedirect(*reply)) {
      TRL_FUZZ_CHECK(redirect->slot < redis::kSlotCount && !redirect->host.empty());
    }
  }
  return 0;
}
