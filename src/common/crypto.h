// Hashing and comparison of secrets (OpenSSL). Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trl {

using Sha256 = std::array<uint8_t, 32>;

Sha256 Sha256Of(std::string_view data);
std::string ToHex(const Sha256& digest);
// Parses 64 hex digits (either case); nullopt otherwise.
std::optional<Sha256> Sha256FromHex(std::string_view hex);
// Compares in time that depends only on the length, never on where the inputs differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);
bool ConstantTimeEquals(const Sha256& a, const Sha256& b);
// `random_bytes` bytes from OpenSSL's CSPRNG, in lowercase hex.
std::string RandomHex(int random_bytes);
// "sk-" followed by base62 of `random_bytes` bytes from OpenSSL's CSPRNG.
std::string NewSecretKey(int random_bytes = 32);

}  // namespace trl
