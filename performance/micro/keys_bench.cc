// The keys made through the admin API, as an instance holds 100,000 of them (ManagedKeys):
//
//   BM_ManagedKeysFindByHash   the authenticator's lookup of a request's key by the SHA-256 of
//                              its secret: what every request pays for an API-made key.
//   BM_ManagedKeysWithChange   the next snapshot after one key is made (WithChanges): what an
//                              admin write or a synced change costs the instance, with the old
//                              snapshot released.
//   BM_ParseKeyRecord          one stored record read back (ParseKeyRecord), with two limits:
//                              what loading each key costs at start-up and in a sync.
//
// Build Release: cmake --build --preset release --target trl_keys_bench
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "common/crypto.h"
#include "keys/managed_keys.h"

namespace trl {
namespace {

constexpr int kKeys = 100'000;

KeyRecord Record(const std::string& name) {
  KeyRecord r;
  r.key.name = name;
  r.key.key_sha256 = Sha256Of("sk-" + name);
  return r;
}

std::shared_ptr<const ManagedKeys> Loaded() {
  std::vector<KeyRecord> records;
  records.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) records.push_back(Record("user-" + std::to_string(i)));
  return ManagedKeys::FromRecords(1, std::move(records));
}

void BM_ManagedKeysFindByHash(benchmark::State& state) {
  auto keys = Loaded();
  std::vector<Sha256> hashes;
  for (int i = 0; i < 1024; ++i) hashes.push_back(Sha256Of("sk-user-" + std::to_string(i * 97)));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(keys->FindByHash(hashes[i++ & 1023]));
  }
}
BENCHMARK(BM_ManagedKeysFindByHash);

void BM_ManagedKeysWithChange(benchmark::State& state) {
  auto keys = Loaded();
  int made = 0;
  for (auto _ : state) {
    std::vector<KeyRecord> changed{Record("made-" + std::to_string(made++))};
    keys = keys->WithChanges(keys->Version() + 1, std::move(changed), {});
  }
}
BENCHMARK(BM_ManagedKeysWithChange);

void BM_ParseKeyRecord(benchmark::State& state) {
  KeyRecord record = Record("user-000042");
  record.key.limits = {
      LimitConfig{.kind = LimitKind::kTokens, .amount = 100'000, .per = std::chrono::minutes(1)},
      LimitConfig{.kind = LimitKind::kRequests, .amount = 600, .per = std::chrono::minutes(1)}};
  record.key.limits_set = true;
  const std::string text = SerializeKeyRecord(record);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ParseKeyRecord(text));
  }
}
BENCHMARK(BM_ParseKeyRecord);

}  // namespace
}  // namespace trl
