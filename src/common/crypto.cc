#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace hoop {

std::string to_hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 0xf];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest is one-shot; it can only fail on allocation, which we treat
  // as fatal since a wrong digest would be worse than none.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) abort();
  return to_hex(md, len);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) abort();
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx_);
}

void Sha256::update(std::string_view data) {
  if (EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) abort();
}

std::string Sha256::final_hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, md, &len) != 1 || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) abort();
  return to_hex(md, len);
}

Result<std::string> sha256_fd(int fd, const std::string& what, std::optional<uint64_t> length) {
  constexpr size_t kChunk = size_t{256} * 1024;
  std::unique_ptr<char[]> buf(new char[kChunk]);
  Sha256 h;
  for (uint64_t off = 0; !length || off < *length;) {
    const size_t want = length ? static_cast<size_t>(std::min<uint64_t>(kChunk, *length - off)) : kChunk;
    const ssize_t n = ::pread(fd, buf.get(), want, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::io, "cannot read " + what + ": " + std::strerror(errno));
    if (n == 0) {
      if (!length) break;
      return make_error(Errc::io, what + " is shorter than " + std::to_string(*length) + " bytes");
    }
    h.update({buf.get(), static_cast<size_t>(n)});
    off += static_cast<uint64_t>(n);
  }
  return h.final_hex();
}

Result<std::string> random_hex(size_t n) {
  std::vector<unsigned char> buf(n);
  if (RAND_bytes(buf.data(), static_cast<int>(n)) != 1)
    return make_error(Errc::internal, "the random number generator failed");
  return to_hex(buf.data(), n);
}

bool secure_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace hoop
