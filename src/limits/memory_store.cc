#include "limits/memory_store.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

#include "config/limit_text.h"

namespace trl {

struct MemoryStore::OwnedRef {
  ScopeKind scope = ScopeKind::kKey;
  std::string scope_name;
  std::string model;
  LimitKind kind = LimitKind::kTokens;
  int64_t period_micros = 0;
  bool calendar = false;
  uint64_t hash = 0;  // of View(), computed once (BatchLocks::HashOf)

  BucketRef View() const { return {scope, scope_name, model, kind, period_micros, calendar}; }
};

// A lookup key: a batch's BucketRef with its hash already computed.
struct MemoryStore::HashedRef {
  BucketRef ref;
  uint64_t hash = 0;
};

// Transparent, so lookups take a HashedRef of string_views and copy nothing; the hash is never
// recomputed (not even when the table grows).
struct MemoryStore::RefHash {
  using is_transparent = void;
  size_t operator()(const HashedRef& ref) const { return ref.hash; }
  size_t operator()(const OwnedRef& ref) const { return ref.hash; }
};

struct MemoryStore::RefEq {
  using is_transparent = void;
  static BucketRef ViewOf(const HashedRef& ref) { return ref.ref; }
  static BucketRef ViewOf(const OwnedRef& ref) { return ref.View(); }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return ViewOf(a) == ViewOf(b);
  }
};

// Own cache line each, so threads working on different owners do not share one.
struct alignas(64) MemoryStore::Shard {
  std::mutex mu;
  std::unordered_map<OwnedRef, Bucket, RefHash, RefEq> buckets;
};

namespace {

// splitmix64's finalizer: spreads the bits of each field before they are combined.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint64_t TextHash(std::string_view text) {
  return text.empty() ? 0 : std::hash<std::string_view>{}(text);
}

uint64_t CombineHash(uint64_t name_hash, uint64_t model_hash, const BucketRef& ref) {
  uint64_t flags = static_cast<uint64_t>(ref.scope) << 3 | static_cast<uint64_t>(ref.kind) << 1 |
                   static_cast<uint64_t>(ref.calendar);
  return Mix(name_hash * 0x9E3779B97F4A7C15ULL ^ model_hash * 0xC2B2AE3D27D4EB4FULL ^
             static_cast<uint64_t>(ref.period_micros) * 0x165667B19E3779F9ULL ^ flags);
}

// By owner only: all of a key's buckets share one shard, so a request locks at most two.
size_t ShardOf(uint64_t name_hash, ScopeKind scope) {
  return Mix(name_hash ^ static_cast<uint64_t>(scope)) % MemoryStore::kShards;
}

}  // namespace

// The buckets of one batch: hashes each ref once (an owner's name once per batch: the Limiter
// passes the same string_view for all of an owner's charges), then locks the distinct shards in
// ascending index order (a global order, so two batches can never wait for each other in a
// cycle) and unlocks them on destruction.
class MemoryStore::BatchLocks {
 public:
  template <typename Items, typename RefOf>
  BatchLocks(std::array<Shard, kShards>& shards, const Items& items, RefOf ref_of)
      : shards_(shards) {
    std::string_view last_name, last_model;
    uint64_t name_hash = 0, model_hash = 0;
    bool first = true;
    for (const auto& item : items) {
      const BucketRef& ref = ref_of(item);
      if (first || ref.scope_name.data() != last_name.data() ||
          ref.scope_name.size() != last_name.size()) {
        name_hash = TextHash(ref.scope_name);
        last_name = ref.scope_name;
      }
      if (first || ref.model.data() != last_model.data() || ref.model.size() != last_model.size()) {
        model_hash = TextHash(ref.model);
        last_model = ref.model;
      }
      first = false;
      keys_.push_back({ref, CombineHash(name_hash, model_hash, ref)});
      size_t index = ShardOf(name_hash, ref.scope);
      shard_of_.push_back(static_cast<uint8_t>(index));
      if (std::find(locked_.begin(), locked_.end(), index) == locked_.end()) {
        locked_.push_back(index);
      }
    }
    std::sort(locked_.begin(), locked_.end());
    for (size_t index : locked_) shards_[index].mu.lock();
  }
  ~BatchLocks() {
    for (auto it = locked_.rbegin(); it != locked_.rend(); ++it) shards_[*it].mu.unlock();
  }
  BatchLocks(const BatchLocks&) = delete;
  BatchLocks& operator=(const BatchLocks&) = delete;

  Shard& ShardAt(size_t i) const { return shards_[shard_of_[i]]; }
  const HashedRef& KeyAt(size_t i) const { return keys_[i]; }

  // For a single ref outside a batch (loading).
  static HashedRef HashOf(const BucketRef& ref, size_t* shard) {
    uint64_t name_hash = TextHash(ref.scope_name);
    *shard = ShardOf(name_hash, ref.scope);
    return {ref, CombineHash(name_hash, TextHash(ref.model), ref)};
  }

 private:
  std::array<Shard, kShards>& shards_;
  boost::container::small_vector<HashedRef, 8> keys_;
  boost::container::small_vector<uint8_t, 8> shard_of_;
  boost::container::small_vector<size_t, 4> locked_;
};

namespace {

bool IsLevelKind(LimitKind kind) { return kind != LimitKind::kConcurrent; }

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS buckets("
    " scope INTEGER NOT NULL,"  // 0 key, 1 tenant
    " scope_name TEXT NOT NULL,"
    " model TEXT NOT NULL,"  // '' = every model
    " kind TEXT NOT NULL,"   // tokens | requests
    " period_us INTEGER NOT NULL,"
    " calendar INTEGER NOT NULL,"
    " capacity INTEGER NOT NULL,"
    " level INTEGER NOT NULL,"
    " frac INTEGER NOT NULL,"
    " stamp_us INTEGER NOT NULL,"  // rolling: last refill; calendar: window start
    " PRIMARY KEY(scope, scope_name, model, kind, period_us, calendar)) WITHOUT ROWID;";

constexpr const char* kSelect =
    "SELECT scope, scope_name, model, kind, period_us, calendar, capacity, level, frac, "
    "stamp_us FROM buckets";

constexpr const char* kUpsert =
    "INSERT OR REPLACE INTO buckets(scope, scope_name, model, kind, period_us, calendar, "
    "capacity, level, frac, stamp_us) VALUES(?,?,?,?,?,?,?,?,?,?)";

}  // namespace

MemoryStore::MemoryStore() : shards_(std::make_unique<std::array<Shard, kShards>>()) {}

MemoryStore::~MemoryStore() = default;

std::unique_ptr<MemoryStore> MemoryStore::Open(const std::string& data_dir, std::string* error) {
  auto store = std::make_unique<MemoryStore>();
  store->db_ = sqlite::Database::Open(data_dir, "limits.db", error);
  if (!store->db_ || !store->db_->Exec("PRAGMA synchronous=NORMAL", error) ||
      !store->db_->Exec(kSchema, error) || !store->Load(error)) {
    return nullptr;
  }
  return store;
}

bool MemoryStore::Load(std::string* error) {
  sqlite::Statement select;
  if (!select.Prepare(*db_, kSelect, error)) return false;
  sqlite::Statement::Step step;
  while ((step = select.Next()) == sqlite::Statement::Step::kRow) {
    std::optional<LimitKind> kind = ParseLimitKind(select.Text(3));
    const int64_t period = select.Int(4);
    // Not written by this version: ignore.
    if (!kind || !IsLevelKind(*kind) || period <= 0) continue;
    OwnedRef ref;
    ref.scope = select.Int(0) == 1 ? ScopeKind::kTenant : ScopeKind::kKey;
    ref.scope_name = std::string(select.Text(1));
    ref.model = std::string(select.Text(2));
    ref.kind = *kind;
    ref.period_micros = period;
    ref.calendar = select.Int(5) != 0;
    Bucket bucket;
    bucket.level.capacity = select.Int(6);
    bucket.level.level = select.Int(7);
    bucket.level.frac = select.Int(8);
    bucket.level.stamp = select.Int(9);
    const int64_t frac_end = ref.calendar ? bucket.level.capacity + 1 : period;
    if (bucket.level.frac < 0 || bucket.level.frac >= frac_end) bucket.level.frac = 0;
    size_t shard = 0;
    ref.hash = BatchLocks::HashOf(ref.View(), &shard).hash;
    (*shards_)[shard].buckets.insert_or_assign(std::move(ref), std::move(bucket));
  }
  if (step == sqlite::Statement::Step::kError) {
    if (error) *error = db_->Error("load");
    return false;
  }
  return true;
}

MemoryStore::Bucket* MemoryStore::Find(Shard& shard, const HashedRef& key) {
  auto it = shard.buckets.find(key);
  return it == shard.buckets.end() ? nullptr : &it->second;
}

MemoryStore::Bucket& MemoryStore::FindOrCreate(Shard& shard, const HashedRef& key,
                                               const BucketSpec& spec, int64_t now_micros) {
  auto it = shard.buckets.find(key);
  if (it != shard.buckets.end()) return it->second;
  const BucketRef& ref = spec.ref;
  Bucket bucket;
  if (IsLevelKind(ref.kind)) bucket.level = FullLevel(spec.Params(), now_micros);
  OwnedRef owned{ref.scope, std::string(ref.scope_name), std::string(ref.model),
                 ref.kind,  ref.period_micros,           ref.calendar,
                 key.hash};
  return shard.buckets.emplace(std::move(owned), std::move(bucket)).first->second;
}

AdmitResult MemoryStore::AdmitNow(const AdmitRequest& request) {
  const int64_t now = request.now_micros;
  const size_t n = request.charges.size();
  AdmitResult result;
  result.now_micros = now;
  result.states.resize(n);
  boost::container::small_vector<Bucket*, 8> buckets(n, nullptr);

  BatchLocks batch(*shards_, request.charges,
                   [](const Charge& c) -> const BucketRef& { return c.bucket.ref; });
  bool all_fit = true;
  for (size_t i = 0; i < n; ++i) {
    const Charge& charge = request.charges[i];
    Bucket& bucket = FindOrCreate(batch.ShardAt(i), batch.KeyAt(i), charge.bucket, now);
    buckets[i] = &bucket;
    BucketState& state = result.states[i];
    if (charge.bucket.ref.kind == LimitKind::kConcurrent) {
      const int64_t capacity = charge.bucket.capacity;
      if (static_cast<int64_t>(bucket.leases.size()) >= capacity) {
        // Only a full bucket needs to know which leases have lapsed.
        std::erase_if(bucket.leases, [now](const Lease& l) { return l.expires_micros <= now; });
      }
      state.in_use = static_cast<int64_t>(bucket.leases.size());
      state.fits = state.in_use < capacity;
    } else {
      // A refusal only looks (as in the Redis script): a bucket changes when it is charged,
      // settled or reset, or when its capacity changed (keeping the same rule in both stores
      // keeps their refills identical across changes of a limit's value).
      state.level = bucket.level;
      Refresh(charge.bucket.Params(), now, state.level);
      if (state.level.capacity != bucket.level.capacity) {
        bucket.level = state.level;
        bucket.dirty = true;
      }
      state.fits = state.level.level >= charge.amount;
    }
    all_fit = all_fit && state.fits;
  }
  if (!all_fit) return result;

  result.admitted = true;
  for (size_t i = 0; i < n; ++i) {
    const Charge& charge = request.charges[i];
    Bucket& bucket = *buckets[i];
    BucketState& state = result.states[i];
    if (charge.bucket.ref.kind == LimitKind::kConcurrent) {
      bucket.leases.push_back({request.id, now + request.lease_ttl_micros});
      state.in_use = static_cast<int64_t>(bucket.leases.size());
    } else {
      Spend(charge.bucket.Params(), charge.amount, state.level);
      bucket.level = state.level;
      bucket.dirty = true;
    }
  }
  return result;
}

StoreStatus MemoryStore::SettleNow(const SettleRequest& request) {
  const int64_t now = request.now_micros;
  BatchLocks batch(*shards_, request.settlements,
                   [](const Settlement& s) -> const BucketRef& { return s.bucket.ref; });
  for (size_t i = 0; i < request.settlements.size(); ++i) {
    const Settlement& s = request.settlements[i];
    Bucket* bucket = Find(batch.ShardAt(i), batch.KeyAt(i));
    if (!bucket) continue;
    switch (s.bucket.ref.kind) {
      case LimitKind::kConcurrent: {
        auto it = std::find_if(bucket->leases.begin(), bucket->leases.end(),
                               [&](const Lease& l) { return l.id == request.id; });
        if (it != bucket->leases.end()) {
          *it = bucket->leases.back();
          bucket->leases.pop_back();
        }
        break;
      }
      case LimitKind::kTokens: {
        if (s.delta == 0) break;
        BucketParams params = s.bucket.Params();
        Refresh(params, now, bucket->level);
        SettleDelta(params, s.delta, s.admitted_stamp, bucket->level);
        bucket->dirty = true;
        break;
      }
      case LimitKind::kRequests:
        break;
    }
  }
  return StoreStatus::kOk;
}

ReadResult MemoryStore::ReadNow(const BucketsRequest& request) {
  const int64_t now = request.now_micros;
  ReadResult result;
  result.now_micros = now;
  result.states.resize(request.buckets.size());
  BatchLocks batch(*shards_, request.buckets,
                   [](const BucketSpec& s) -> const BucketRef& { return s.ref; });
  for (size_t i = 0; i < request.buckets.size(); ++i) {
    const BucketSpec& spec = request.buckets[i];
    BucketState& state = result.states[i];
    state.fits = true;
    const Bucket* bucket = Find(batch.ShardAt(i), batch.KeyAt(i));
    if (spec.ref.kind == LimitKind::kConcurrent) {
      if (bucket) {
        state.in_use = std::count_if(bucket->leases.begin(), bucket->leases.end(),
                                     [now](const Lease& l) { return l.expires_micros > now; });
      }
    } else if (bucket) {
      state.level = bucket->level;
      Refresh(spec.Params(), now, state.level);
    } else {
      state.level = FullLevel(spec.Params(), now);
    }
  }
  return result;
}

StoreStatus MemoryStore::ResetNow(const BucketsRequest& request) {
  const int64_t now = request.now_micros;
  BatchLocks batch(*shards_, request.buckets,
                   [](const BucketSpec& s) -> const BucketRef& { return s.ref; });
  for (size_t i = 0; i < request.buckets.size(); ++i) {
    const BucketSpec& spec = request.buckets[i];
    if (!IsLevelKind(spec.ref.kind)) continue;
    Bucket* bucket = Find(batch.ShardAt(i), batch.KeyAt(i));
    if (!bucket) continue;  // never charged: already full
    bucket->level = FullLevel(spec.Params(), now);
    bucket->dirty = true;
  }
  return StoreStatus::kOk;
}

size_t MemoryStore::BucketCount() const {
  size_t count = 0;
  for (Shard& shard : *shards_) {
    std::lock_guard lock(shard.mu);
    count += shard.buckets.size();
  }
  return count;
}

bool MemoryStore::Flush(std::string* error) {
  std::lock_guard flush_lock(flush_mu_);
  if (!db_) return true;

  struct Row {
    const OwnedRef* ref;  // map keys are immutable and never erased: safe to read unlocked
    BucketLevel level;
  };
  std::vector<Row> rows;
  const bool all = flush_all_.exchange(false);
  for (Shard& shard : *shards_) {
    std::lock_guard lock(shard.mu);
    for (auto& [ref, bucket] : shard.buckets) {
      if (!IsLevelKind(ref.kind) || !(bucket.dirty || all)) continue;
      rows.push_back({&ref, bucket.level});
      bucket.dirty = false;
    }
  }
  if (rows.empty()) return true;

  sqlite::Transaction transaction(*db_, error);
  sqlite::Statement upsert;
  bool ok = transaction.Began() && upsert.Prepare(*db_, kUpsert, error);
  for (size_t i = 0; ok && i < rows.size(); ++i) {
    const Row& row = rows[i];
    upsert.Reset();
    upsert.Bind(1, row.ref->scope == ScopeKind::kTenant ? 1 : 0);
    upsert.BindText(2, row.ref->scope_name);
    upsert.BindText(3, row.ref->model);
    upsert.BindText(4, LimitKindName(row.ref->kind));
    upsert.Bind(5, row.ref->period_micros);
    upsert.Bind(6, row.ref->calendar ? 1 : 0);
    upsert.Bind(7, row.level.capacity);
    upsert.Bind(8, row.level.level);
    upsert.Bind(9, row.level.frac);
    upsert.Bind(10, row.level.stamp);
    if (!upsert.Run()) {
      if (error) *error = db_->Error("write");
      ok = false;
    }
  }
  if (ok) ok = transaction.Commit(error);
  // The dirty marks were cleared: rewrite everything next time.
  if (!ok) flush_all_ = true;
  return ok;
}

}  // namespace trl
