// `token-rate-limiter copy-store --from FROM.yaml --to TO.yaml`: moves what a store holds that
// the gateway cannot rebuild, from the store FROM's config names to the one TO's names
// (embedded to Redis, Redis to embedded, one Redis to another): every key made through the
// admin API, and every usage row FROM still keeps (its usage.retention). Budgets are not copied:
// they start full on the new store. The target must hold no API-made key and no usage row (usage
// rows add up: a copy is never merged), and no gateway may be using either store meanwhile.
// docs/redis.md, "Moving from the embedded store".
//
// Threading: runs on the calling thread (the main thread of the command), blocking.
#pragma once

#include <string>

namespace trl {

// Prints what it copied on stdout, or the error on stderr; returns the exit code (0 copied, 1
// refused or failed, 2 a config that does not load).
int CopyStoreCommand(const std::string& from_config, const std::string& to_config);

}  // namespace trl
