// The Lua scripts that write keys made through the admin API into Redis. Each is one atomic
// step with the version bump that tells other instances to reload.
//
// A script may run twice: RedisClient sends a command again when its connection dropped before
// the reply, and the first run may have been applied. So every write carries an operation id
// (KEYS[3], "trl:keys:{keys}:op:<id>"): the first run keeps its answer there (for ARGV's last
// value, in milliseconds), and a run that finds it answers the same and changes nothing. A
// create whose reply was lost then still answers "created" (not "exists", which would lose the
// secret the caller is about to show once), and a resent remove answers "removed".
//
// KEYS: records hash, version counter, operation id. ARGV: name, [record,] operation TTL.
// Answer: the new version, or -1 (create: the name exists; replace, remove: it does not).
#pragma once

#include <string>

namespace trl::key_scripts {

extern const std::string kCreate;   // ARGV: name, record JSON, TTL
extern const std::string kReplace;  // ARGV: name, record JSON, TTL
extern const std::string kRemove;   // ARGV: name, TTL
extern const std::string kLoad;     // KEYS: records, version. Answer: {version, HGETALL}

}  // namespace trl::key_scripts
