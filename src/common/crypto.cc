#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace trl {

namespace {

// OpenSSL 3 looks the algorithm up in its provider registry (locks, a hash table) on every call
// given EVP_sha256(); fetched once, and with one context per thread, a digest on the request
// path is just the hashing.
const EVP_MD* Sha256Md() {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return kSha256;
}

struct DigestContext {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

Sha256 Sha256Of(std::string_view data) {
  Sha256 out{};
  unsigned int len = 0;
  thread_local DigestContext context;
  const EVP_MD* md = Sha256Md();
  if (!md || !context.ctx || EVP_DigestInit_ex(context.ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(context.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.ctx, out.data(), &len) != 1) {
    // Not expected with the default provider; the one-shot call is the fallback.
    EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  }
  return out;
}

std::string ToHex(const Sha256& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

std::optional<Sha256> Sha256FromHex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Sha256 out{};
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool ConstantTimeEquals(const Sha256& a, const Sha256& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RandomHex(int random_bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  unsigned char buf[64];
  while (static_cast<int>(out.size()) < 2 * random_bytes) {
    if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("RAND_bytes failed");
    for (unsigned char c : buf) {
      if (static_cast<int>(out.size()) == 2 * random_bytes) break;
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

std::string NewSecretKey(int random_bytes) {
  static constexpr char kBase62[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out = "sk-";
  // Rejection sampling keeps every base62 digit uniform: bytes >= 248 are drawn again.
  while (static_cast<int>(out.size()) < 3 + random_bytes * 4 / 3 + 1) {
    unsigned char buf[64];
    if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("RAND_bytes failed");
    for (unsigned char c : buf) {
      if (c < 248 && static_cast<int>(out.size()) < 3 + random_bytes * 4 / 3 + 1) {
        out.push_back(kBase62[c % 62]);
      }
    }
  }
  return out;
}

}  // namespace trl
