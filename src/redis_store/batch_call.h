// One call of the batch script (lua_scripts.h) for the admissions and settlements of one shard:
// their figures packed into the script's arguments, and the script's reply read back into each
// admission's outcome. The reply holds only each admission's verdict and the state every bucket
// was in before the first admission; the states each admission left are worked out here by
// replaying the verdicts with bucket.h's rules (the script's), and a reply that does not add up
// is a failed call.
//
// Use: AddSettlement / AddAdmission in the batch's order, TakeArgs, run the command, ReadReply,
// then Replay for every admission, in the order they were added.
//
// Thread-safety: one BatchCall belongs to the coroutine making the call. The requests added
// must outlive it.
#pragma once

#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "limits/store.h"

namespace trl::redis {

// Appends `spec`'s record, as every script takes the specs of its buckets (lua_scripts.h).
void PackSpec(std::string& out, const BucketSpec& spec);

class BatchCall {
 public:
  // `shard_prefix`: "<prefix>{<shard>}:", the start of every key of the call. Room is kept for
  // `expected_calls` admissions and settlements without growing.
  BatchCall(std::string shard_prefix, size_t expected_calls);

  void AddSettlement(const SettleRequest& request);
  void AddAdmission(const AdmitRequest& request);
  size_t Admissions() const { return admissions_; }

  // EVALSHA's arguments ("EVALSHA", sha, numkeys, KEYS..., ARGV...); args[3] is the records'
  // prefix, a key of the shard's slot. Once, after the last Add: the packed figures move out.
  std::vector<std::string> TakeArgs(const std::string& sha, std::string now_arg,
                                    const std::string& short_record_ttl_ms,
                                    const std::string& idle_margin_ms);

  // The script's reply (a string), which must outlive the calls of Replay. False when it is not
  // the size this batch's reply has.
  bool ReadReply(std::string_view reply);
  // The next admission's outcome into `result`. False when the reply does not add up (a verdict
  // that the buckets' states contradict, or an unknown flag).
  bool Replay(const AdmitRequest& request, AdmitResult& result);

 private:
  // The buckets of the call: KEYS (the records' prefix first), the bucket behind each key after
  // it (so that a bucket named by many requests of the batch is found without building its
  // name), and their specs, packed.
  struct Keys {
    std::vector<std::string> keys;
    std::vector<const BucketSpec*> buckets;  // buckets[i] is keys[i + 1]'s
    std::string specs;
  };
  // A bucket as the admissions leave it, from the state the reply gives.
  struct Replayed {
    BucketParams params;  // capacity as packed for the script (never negative)
    BucketLevel level;    // kTokens/kRequests
    int64_t in_use = 0;   // kConcurrent
  };

  // The 1-based index in KEYS of `spec`'s key, added when new.
  size_t IndexOf(const BucketSpec& spec);
  // ARGV[7]: when every charge is on a token or request bucket and none is negative, the
  // admissions' total per bucket (the script then judges them all at once when they fit).
  std::string AllAtOnce();
  // Whether each charge of `request` fits the buckets as replayed so far (all of them for
  // `replay`, an admission an earlier copy of the call applied); true when all do.
  bool Judge(const AdmitRequest& request, bool replay, AdmitResult& result) const;

  std::string prefix_;
  Keys keys_;
  std::string settlements_;
  std::string admissions_packed_;
  size_t admissions_ = 0;
  boost::container::small_vector<uint16_t, 64> charge_keys_;  // each charge's index in KEYS
  boost::container::small_vector<int64_t, 8> demand_;         // by bucket, from KEYS[2]; -1: none
  bool together_ = true;  // every charge on a token or request bucket, none negative

  // The reply.
  int64_t now_ = 0;
  std::string_view flags_;    // per admission: '1' admitted, '0' refused, 'x' given up
  std::string_view replays_;  // per admission: '1' applied by an earlier copy of the call
  boost::container::small_vector<Replayed, 8> replayed_;
  size_t next_admission_ = 0;
  const uint16_t* next_charge_ = nullptr;
};

}  // namespace trl::redis
