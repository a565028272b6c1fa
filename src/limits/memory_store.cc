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
  std::vector<Entry*> changed;  // since the last CommitJournal (nodes never move nor die)
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
    " PRIMARY KEY(scope, scope_name, model, kind, period_us, calendar)) WITHOUT ROWID;"
    // The last journal segment whose changes the buckets above include.
    "CREATE TABLE IF NOT EXISTS checkpoint(id INTEGER PRIMARY KEY CHECK(id = 0),"
    " segment INTEGER NOT NULL);";

constexpr const char* kSelect =
    "SELECT scope, scope_name, model, kind, period_us, calendar, capacity, level, frac, "
    "stamp_us FROM buckets";

constexpr const char* kUpsert =
    "INSERT OR REPLACE INTO buckets(scope, scope_name, model, kind, period_us, calendar, "
    "capacity, level, frac, stamp_us) VALUES(?,?,?,?,?,?,?,?,?,?)";

constexpr const char* kDelete =
    "DELETE FROM buckets WHERE scope = ? AND scope_name = ? AND model = ? AND kind = ? AND "
    "period_us = ? AND calendar = ?";

constexpr const char* kSelectCheckpoint = "SELECT segment FROM checkpoint WHERE id = 0";
constexpr const char* kSetCheckpoint =
    "INSERT OR REPLACE INTO checkpoint(id, segment) VALUES(0, ?)";

constexpr std::string_view kJournalHeader = "limits 1";

}  // namespace

MemoryStore::MemoryStore() : shards_(std::make_unique<std::array<Shard, kShards>>()) {}

MemoryStore::~MemoryStore() = default;

std::unique_ptr<MemoryStore> MemoryStore::Open(const std::string& data_dir, std::string* error,
                                               std::optional<FsyncPolicy> journal) {
  auto store = std::make_unique<MemoryStore>();
  store->db_ = sqlite::Database::Open(data_dir, "limits.db", error);
  if (!store->db_ || !store->db_->Exec("PRAGMA synchronous=NORMAL", error) ||
      !store->db_->Exec(kSchema, error) || !store->Load(error)) {
    return nullptr;
  }
  if (journal) {
    store->journal_ =
        Journal::Open(data_dir + "/journal", "limits", *journal, kJournalHeader, error);
    if (!store->journal_ || !store->Replay(error)) return nullptr;
  }
  return store;
}

// A bucket as saved (limits.db row or journal record); what this version cannot use is ignored.
void MemoryStore::Restore(OwnedRef ref, BucketLevel level, bool dirty) {
  if (!IsLevelKind(ref.kind) || ref.period_micros <= 0) return;
  const int64_t frac_end = ref.calendar ? level.capacity + 1 : ref.period_micros;
  if (level.frac < 0 || level.frac >= frac_end) level.frac = 0;
  size_t shard = 0;
  ref.hash = BatchLocks::HashOf(ref.View(), &shard).hash;
  Bucket bucket;
  bucket.level = level;
  bucket.dirty = dirty;
  (*shards_)[shard].buckets.insert_or_assign(std::move(ref), std::move(bucket));
}

bool MemoryStore::Load(std::string* error) {
  sqlite::Statement select;
  if (!select.Prepare(*db_, kSelect, error)) return false;
  sqlite::Statement::Step step;
  while ((step = select.Next()) == sqlite::Statement::Step::kRow) {
    std::optional<LimitKind> kind = ParseLimitKind(select.Text(3));
    if (!kind) continue;  // not written by this version
    OwnedRef ref;
    ref.scope = select.Int(0) == 1 ? ScopeKind::kTenant : ScopeKind::kKey;
    ref.scope_name = std::string(select.Text(1));
    ref.model = std::string(select.Text(2));
    ref.kind = *kind;
    ref.period_micros = select.Int(4);
    ref.calendar = select.Int(5) != 0;
    BucketLevel level;
    level.capacity = select.Int(6);
    level.level = select.Int(7);
    level.frac = select.Int(8);
    level.stamp = select.Int(9);
    Restore(std::move(ref), level, /*dirty=*/false);
  }
  if (step == sqlite::Statement::Step::kError) {
    if (error) *error = db_->Error("load");
    return false;
  }
  return true;
}

// The journal's segments after the last checkpoint, in order (a bucket's last record is its
// state), then a checkpoint of the result.
bool MemoryStore::Replay(std::string* error) {
  sqlite::Statement select;
  if (!select.Prepare(*db_, kSelectCheckpoint, error)) return false;
  const int64_t checkpoint = select.Next() == sqlite::Statement::Step::kRow ? select.Int(0) : 0;
  for (uint64_t segment : journal_->Leftover()) {
    if (static_cast<int64_t>(segment) <= checkpoint) continue;
    if (!journal_->Read(
            segment, [](std::string_view) {},
            [this](std::string_view record) { ApplyRecord(record); }, error)) {
      return false;
    }
  }
  journaling_ = true;
  // The checkpoint below saves what was replayed (dirty), closes the segment opened at start
  // and drops the ones replayed.
  if (!journal_->Leftover().empty()) unrotated_ = 1;
  return Flush(error);
}

void MemoryStore::ApplyRecord(std::string_view record) {
  RecordReader in(record);
  OwnedRef ref;
  ref.scope = in.Int() == 1 ? ScopeKind::kTenant : ScopeKind::kKey;
  ref.scope_name = std::string(in.Text());
  ref.model = std::string(in.Text());
  std::optional<LimitKind> kind = ParseLimitKind(in.Text());
  ref.period_micros = in.Int();
  ref.calendar = in.Int() != 0;
  BucketLevel level;
  level.capacity = in.Int();
  level.level = in.Int();
  level.frac = in.Int();
  level.stamp = in.Int();
  if (in.Failed() || !kind) return;
  ref.kind = *kind;
  Restore(std::move(ref), level, /*dirty=*/true);
}

// Under flush_mu_. Copies the changed buckets' states under their shard's lock, encodes them
// outside it.
void MemoryStore::JournalChanges() {
  journal_changes_.clear();
  for (Shard& shard : *shards_) {
    std::lock_guard lock(shard.mu);
    for (Entry* entry : shard.changed) {
      journal_changes_.push_back({&entry->first, entry->second.level});
      entry->second.unjournaled = false;
    }
    shard.changed.clear();
  }
  std::string record;
  for (const auto& [ref, level] : journal_changes_) {
    record.clear();
    RecordWriter(record)
        .Int(ref->scope == ScopeKind::kTenant ? 1 : 0)
        .Text(ref->scope_name)
        .Text(ref->model)
        .Text(LimitKindName(ref->kind))
        .Int(ref->period_micros)
        .Int(ref->calendar ? 1 : 0)
        .Int(level.capacity)
        .Int(level.level)
        .Int(level.frac)
        .Int(level.stamp);
    journal_->Append(record);
  }
  unrotated_ += journal_changes_.size();
}

bool MemoryStore::CommitJournal(std::string* error) {
  std::lock_guard flush_lock(flush_mu_);
  if (!journal_) return true;
  JournalChanges();
  return journal_->Commit(error);
}

MemoryStore::Entry* MemoryStore::Find(Shard& shard, const HashedRef& key) {
  auto it = shard.buckets.find(key);
  return it == shard.buckets.end() ? nullptr : &*it;
}

MemoryStore::Entry& MemoryStore::FindOrCreate(Shard& shard, const HashedRef& key,
                                              const BucketSpec& spec, int64_t now_micros) {
  auto it = shard.buckets.find(key);
  if (it != shard.buckets.end()) return *it;
  const BucketRef& ref = spec.ref;
  Bucket bucket;
  if (IsLevelKind(ref.kind)) bucket.level = FullLevel(spec.Params(), now_micros);
  OwnedRef owned{ref.scope, std::string(ref.scope_name), std::string(ref.model),
                 ref.kind,  ref.period_micros,           ref.calendar,
                 key.hash};
  return *shard.buckets.emplace(std::move(owned), std::move(bucket)).first;
}

void MemoryStore::Changed(Shard& shard, Entry& entry) {
  Bucket& bucket = entry.second;
  bucket.dirty = true;
  if (journaling_ && !bucket.unjournaled) {
    bucket.unjournaled = true;
    shard.changed.push_back(&entry);
  }
}

AdmitResult MemoryStore::AdmitNow(const AdmitRequest& request) {
  const int64_t now = request.now_micros;
  const size_t n = request.charges.size();
  AdmitResult result;
  result.now_micros = now;
  result.states.resize(n);
  boost::container::small_vector<Entry*, 8> entries(n, nullptr);

  BatchLocks batch(*shards_, request.charges,
                   [](const Charge& c) -> const BucketRef& { return c.bucket.ref; });
  bool all_fit = true;
  for (size_t i = 0; i < n; ++i) {
    const Charge& charge = request.charges[i];
    Entry& entry = FindOrCreate(batch.ShardAt(i), batch.KeyAt(i), charge.bucket, now);
    entries[i] = &entry;
    Bucket& bucket = entry.second;
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
        Changed(batch.ShardAt(i), entry);
      }
      state.fits = state.level.level >= charge.amount;
    }
    all_fit = all_fit && state.fits;
  }
  if (!all_fit) return result;

  result.admitted = true;
  for (size_t i = 0; i < n; ++i) {
    const Charge& charge = request.charges[i];
    Bucket& bucket = entries[i]->second;
    BucketState& state = result.states[i];
    if (charge.bucket.ref.kind == LimitKind::kConcurrent) {
      bucket.leases.push_back({request.id, now + request.lease_ttl_micros});
      state.in_use = static_cast<int64_t>(bucket.leases.size());
    } else {
      Spend(charge.bucket.Params(), charge.amount, state.level);
      bucket.level = state.level;
      Changed(batch.ShardAt(i), *entries[i]);
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
    Entry* entry = Find(batch.ShardAt(i), batch.KeyAt(i));
    if (!entry) continue;
    Bucket* bucket = &entry->second;
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
      case LimitKind::kTokens:
      case LimitKind::kSpend: {
        if (s.delta == 0) break;
        BucketParams params = s.bucket.Params();
        Refresh(params, now, bucket->level);
        SettleDelta(params, s.delta, s.admitted_stamp, bucket->level);
        Changed(batch.ShardAt(i), *entry);
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
    const Entry* entry = Find(batch.ShardAt(i), batch.KeyAt(i));
    const Bucket* bucket = entry ? &entry->second : nullptr;
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
    Entry* entry = Find(batch.ShardAt(i), batch.KeyAt(i));
    if (!entry) continue;  // never charged: already full
    entry->second.level = FullLevel(spec.Params(), now);
    Changed(batch.ShardAt(i), *entry);
  }
  return StoreStatus::kOk;
}

bool MemoryStore::Evictable(const OwnedRef& ref, Bucket& bucket, int64_t now_micros) const {
  if (ref.kind == LimitKind::kConcurrent) {
    std::erase_if(bucket.leases,
                  [now_micros](const Lease& l) { return l.expires_micros <= now_micros; });
    return bucket.leases.empty();
  }
  // Its last change must be in limits.db and the journal already: dropping the bucket drops it
  // from both (the row below; the journal's records of it are older than the checkpoint).
  if (bucket.unjournaled || (db_ && bucket.dirty)) return false;
  BucketLevel level = bucket.level;
  Refresh({ref.kind, level.capacity, ref.period_micros, ref.calendar}, now_micros, level);
  return level.level >= level.capacity && level.frac == 0;
}

size_t MemoryStore::Evict(int64_t now_micros, std::string* error) {
  std::lock_guard flush_lock(flush_mu_);
  std::vector<OwnedRef> evicted;  // with a database: the rows to delete
  size_t count = 0;
  for (Shard& shard : *shards_) {
    std::lock_guard lock(shard.mu);
    for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
      if (Evictable(it->first, it->second, now_micros)) {
        ++count;
        if (db_ && IsLevelKind(it->first.kind)) evicted.push_back(it->first);
        it = shard.buckets.erase(it);
      } else {
        ++it;
      }
    }
  }
  // A row left behind would read full anyway; deleting it keeps limits.db to the budgets in use.
  if (db_ && !evicted.empty()) DeleteRows(evicted, error);
  return count;
}

bool MemoryStore::DeleteRows(const std::vector<OwnedRef>& refs, std::string* error) {
  sqlite::Transaction transaction(*db_, error);
  sqlite::Statement remove;
  bool ok = transaction.Began() && remove.Prepare(*db_, kDelete, error);
  for (size_t i = 0; ok && i < refs.size(); ++i) {
    const OwnedRef& ref = refs[i];
    remove.Reset();
    BindIdentity(remove, ref);
    if (!remove.Run()) {
      if (error) *error = db_->Error("delete");
      ok = false;
    }
  }
  return ok && transaction.Commit(error);
}

size_t MemoryStore::BucketCount() const {
  size_t count = 0;
  for (Shard& shard : *shards_) {
    std::lock_guard lock(shard.mu);
    count += shard.buckets.size();
  }
  return count;
}

// A bucket's primary key in limits.db, as parameters 1-6 of `statement`.
void MemoryStore::BindIdentity(sqlite::Statement& statement, const OwnedRef& ref) {
  statement.Bind(1, ref.scope == ScopeKind::kTenant ? 1 : 0);
  statement.BindText(2, ref.scope_name);
  statement.BindText(3, ref.model);
  statement.BindText(4, LimitKindName(ref.kind));
  statement.Bind(5, ref.period_micros);
  statement.Bind(6, ref.calendar ? 1 : 0);
}

bool MemoryStore::Flush(std::string* error) {
  std::lock_guard flush_lock(flush_mu_);
  if (!db_) return true;

  // Everything journaled so far is in the segments up to `closed`, and the buckets copied below
  // are at least as new: the checkpoint makes those segments useless.
  std::optional<uint64_t> closed;
  bool rotated = true;  // or there was nothing to rotate
  if (journal_) {
    JournalChanges();
    if (unrotated_ > 0) {
      closed = journal_->Rotate(kJournalHeader, error);
      rotated = closed.has_value();
    }
    if (closed) unrotated_ = 0;
  }
  struct Row {
    const OwnedRef* ref;  // erased only by Evict, which waits for flush_mu_: safe to read unlocked
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
  if (rows.empty() && !closed) return rotated;

  sqlite::Transaction transaction(*db_, error);
  sqlite::Statement upsert;
  bool ok = transaction.Began() && upsert.Prepare(*db_, kUpsert, error);
  for (size_t i = 0; ok && i < rows.size(); ++i) {
    const Row& row = rows[i];
    upsert.Reset();
    BindIdentity(upsert, *row.ref);
    upsert.Bind(7, row.level.capacity);
    upsert.Bind(8, row.level.level);
    upsert.Bind(9, row.level.frac);
    upsert.Bind(10, row.level.stamp);
    if (!upsert.Run()) {
      if (error) *error = db_->Error("write");
      ok = false;
    }
  }
  if (ok && closed) ok = SaveCheckpoint(*closed, error);
  if (ok) ok = transaction.Commit(error);
  // The dirty marks were cleared: rewrite everything next time.
  if (!ok) flush_all_ = true;
  if (ok && closed) journal_->DropThrough(*closed);
  // The buckets were saved, but the journal's segment could not be closed: say so (*error).
  return ok && rotated;
}

bool MemoryStore::SaveCheckpoint(uint64_t segment, std::string* error) {
  sqlite::Statement set;
  if (!set.Prepare(*db_, kSetCheckpoint, error)) return false;
  set.Bind(1, static_cast<int64_t>(segment));
  if (set.Run()) return true;
  if (error) *error = db_->Error("checkpoint");
  return false;
}

}  // namespace trl
