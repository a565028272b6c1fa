#include "redis_store/batch_call.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "config/limit_text.h"
#include "redis_store/packed.h"

namespace trl::redis {
namespace {

// A bucket's index in KEYS, as packed ('H').
void PutIndex(std::string& out, size_t index) { PutInt(out, static_cast<int64_t>(index), 2); }

// A settlement's or an admission's head ('<c8i8BH'): its id (the 8 bytes of its record's name
// and of its concurrency leases), lease TTL µs, flags, number of records that follow.
void PutHead(std::string& out, uint64_t id, int64_t ttl_micros, bool flag, size_t count) {
  PutInt(out, static_cast<int64_t>(id), 8);
  PutInt(out, std::max<int64_t>(ttl_micros, 1), 8);
  PutInt(out, flag ? 1 : 0, 1);
  PutInt(out, static_cast<int64_t>(count), 2);
}

// The packed records' sizes (lua_scripts.h): a settlement's or an admission's head '<c8i8BH',
// each of their entries '<Hi8'; in the reply, a bucket's '<i8i8i8'.
constexpr size_t kHeadSize = 8 + 8 + 1 + 2;
constexpr size_t kChargeSize = 2 + 8;
constexpr size_t kBucketReplySize = 8 + 8 + 8;

}  // namespace

// A spec record (lua_scripts.h): '<c1Bi8i8' kind ('t', 'r' or 'c': its name's first letter),
// calendar, capacity, period.
void PackSpec(std::string& out, const BucketSpec& spec) {
  out.push_back(LimitKindName(spec.ref.kind).front());
  out.push_back(spec.ref.calendar ? 1 : 0);
  PutInt(out, std::max<int64_t>(spec.capacity, 0), 8);
  PutInt(out, spec.ref.period_micros, 8);
}

BatchCall::BatchCall(std::string shard_prefix, size_t expected_calls)
    : prefix_(std::move(shard_prefix)) {
  keys_.keys.push_back(prefix_ + "r:");
  settlements_.reserve(expected_calls * (kHeadSize + 3 * kChargeSize));
  admissions_packed_.reserve(expected_calls * (kHeadSize + 3 * kChargeSize));
}

size_t BatchCall::IndexOf(const BucketSpec& spec) {
  for (size_t i = 0; i < keys_.buckets.size(); ++i) {
    if (keys_.buckets[i]->ref == spec.ref) return i + 2;
  }
  keys_.keys.push_back(prefix_ + spec.ref.Id());
  keys_.buckets.push_back(&spec);
  PackSpec(keys_.specs, spec);
  return keys_.keys.size();
}

void BatchCall::AddSettlement(const SettleRequest& r) {
  PutHead(settlements_, r.id, r.lease_ttl_micros, r.outcome_unknown, r.settlements.size());
  for (const Settlement& st : r.settlements) {
    PutIndex(settlements_, IndexOf(st.bucket));
    PutInt(settlements_, st.delta, 8);
  }
}

void BatchCall::AddAdmission(const AdmitRequest& r) {
  ++admissions_;
  PutHead(admissions_packed_, r.id, r.lease_ttl_micros, r.settles, r.charges.size());
  for (const Charge& c : r.charges) {
    const size_t index = IndexOf(c.bucket);
    charge_keys_.push_back(static_cast<uint16_t>(index));
    PutIndex(admissions_packed_, index);
    PutInt(admissions_packed_, c.amount, 8);
    demand_.resize(keys_.buckets.size(), -1);
    demand_[index - 2] = std::max<int64_t>(demand_[index - 2], 0) + c.amount;
    together_ = together_ && c.bucket.ref.kind != LimitKind::kConcurrent && c.amount >= 0;
  }
}

std::string BatchCall::AllAtOnce() {
  std::string out;
  if (!together_ || admissions_ < 2) return out;
  PutInt(out, static_cast<int64_t>(admissions_), 2);
  demand_.resize(keys_.buckets.size(), -1);
  for (int64_t d : demand_) PutInt(out, d, 8);
  return out;
}

std::vector<std::string> BatchCall::TakeArgs(const std::string& sha, std::string now_arg,
                                             const std::string& short_record_ttl_ms,
                                             const std::string& idle_margin_ms) {
  std::vector<std::string> args;
  args.reserve(10 + keys_.keys.size());
  args.emplace_back("EVALSHA");
  args.push_back(sha);
  args.push_back(std::to_string(keys_.keys.size()));
  std::move(keys_.keys.begin(), keys_.keys.end(), std::back_inserter(args));
  args.push_back(std::move(now_arg));
  args.push_back(short_record_ttl_ms);
  args.push_back(idle_margin_ms);
  args.push_back(std::move(keys_.specs));
  args.push_back(std::move(settlements_));
  args.push_back(std::move(admissions_packed_));
  args.push_back(AllAtOnce());
  return args;
}

// The reply: now, each admission's flag, whether each was applied by an earlier copy of this
// call, then each bucket's starting state.
bool BatchCall::ReadReply(std::string_view reply) {
  const size_t buckets = keys_.buckets.size();
  if (reply.size() != 8 + 2 * admissions_ + kBucketReplySize * buckets) return false;
  PackedReader head(reply);
  now_ = head.Int(8);
  flags_ = reply.substr(8, admissions_);
  replays_ = reply.substr(8 + admissions_, admissions_);
  PackedReader tail(reply.substr(reply.size() - kBucketReplySize * buckets));
  replayed_.resize(buckets);
  for (size_t i = 0; i < buckets; ++i) {
    Replayed& b = replayed_[i];
    b.params = keys_.buckets[i]->Params();
    b.params.capacity = std::max<int64_t>(b.params.capacity, 0);
    b.level.capacity = b.params.capacity;  // the script refreshed it to that
    if (b.params.kind == LimitKind::kConcurrent) {
      b.in_use = tail.Int(8);
    } else {
      b.level.level = tail.Int(8);
    }
    b.level.frac = tail.Int(8);
    b.level.stamp = tail.Int(8);
  }
  next_admission_ = 0;
  next_charge_ = charge_keys_.data();
  return head.Ok() && tail.AtEnd();
}

bool BatchCall::Judge(const AdmitRequest& request, bool replay, AdmitResult& result) const {
  const auto& charges = request.charges;
  result.states.resize(charges.size());
  bool all = true;
  for (size_t i = 0; i < charges.size(); ++i) {
    const Replayed& b = replayed_[next_charge_[i] - 2];
    const bool concurrent = b.params.kind == LimitKind::kConcurrent;
    const bool fits =
        replay || (concurrent ? b.in_use < b.params.capacity : b.level.level >= charges[i].amount);
    result.states[i].fits = fits;
    all = all && fits;
  }
  return all;
}

bool BatchCall::Replay(const AdmitRequest& request, AdmitResult& result) {
  const auto& charges = request.charges;
  const char flag = flags_[next_admission_];
  const bool replay = replays_[next_admission_] == '1';
  ++next_admission_;
  result.admitted = flag == '1';
  if (flag == 'x') {  // (only a copy of a call whose caller has had its answer: nobody reads this)
    result.status = StoreStatus::kError;
    next_charge_ += charges.size();
    return true;
  }
  result.now_micros = now_;
  const bool all_fit = Judge(request, replay, result);
  // The script's verdict, by the same rules.
  const bool ok = (result.admitted || flag == '0') && all_fit == result.admitted;
  // (An admission the first try of a retried call applied is not charged again.)
  for (size_t i = 0; result.admitted && !replay && i < charges.size(); ++i) {
    Replayed& b = replayed_[next_charge_[i] - 2];
    if (b.params.kind == LimitKind::kConcurrent) {
      ++b.in_use;
    } else {
      Spend(b.params, charges[i].amount, b.level);
    }
  }
  // Every charge's state after the whole admission (two charges may share a bucket).
  for (size_t i = 0; i < charges.size(); ++i, ++next_charge_) {
    const Replayed& b = replayed_[*next_charge_ - 2];
    result.states[i].level = b.level;
    result.states[i].in_use = b.in_use;
  }
  return ok;
}

}  // namespace trl::redis
