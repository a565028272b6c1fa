// The Lua scripts that write keys made through the admin API into Redis, and read them back.
// Each write is one atomic step with the version bump that tells other instances to sync, and
// with its entry in the change log they sync from.
//
// The change log is the sorted set KEYS[4] (name -> the version of its last change; a name whose
// record is gone was removed), trimmed to its newest ARGV[#ARGV-1] names, and the hash KEYS[5]:
// `logged`, the last version the log recorded, and `floor`: changes at or below it may be
// missing (trimmed, or written by a release that kept no log: then the version had moved past
// `logged`). A reader whose snapshot is older than `floor` loads every key instead.
//
// A script may run twice: RedisClient sends a command again when its connection dropped before
// the reply, and the first run may have been applied. So every write carries an operation id
// (KEYS[3], "trl:keys:{keys}:op:<id>"): the first run keeps its answer there (for ARGV's last
// value, in milliseconds), and a run that finds it answers the same and changes nothing. A
// create whose reply was lost then still answers "created" (not "exists", which would lose the
// secret the caller is about to show once), and a resent remove answers "removed".
//
// KEYS: records hash, version counter, operation id, changes, log. ARGV: name, [record,] log
// size, operation TTL. Answer: the new version, or -1 (create: the name exists; replace,
// remove: it does not), or -2 (replace: the stored record is not the one replaced).
#pragma once

#include <string>

namespace trl::key_scripts {

extern const std::string kCreate;  // ARGV: name, record JSON, log size, TTL
// ARGV: name, record JSON, revision and SHA-256 (hex) of the record replaced, log size, TTL.
extern const std::string kReplace;
extern const std::string kRemove;  // ARGV: name, log size, TTL
extern const std::string kLoad;    // KEYS: records, version. Answer: {version, HGETALL}
// KEYS: records, version, changes, log. ARGV: the reader's version. Answer: {version, 1,
// names, their records (nil: removed)} with every change after the reader's version, or
// {version, 0} when the log does not reach back to it (or the store went back below it).
extern const std::string kChanges;

}  // namespace trl::key_scripts
