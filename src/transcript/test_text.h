#pragma once
// Test helper: deterministic "ordinary" terminal text (log-like lines with
// some colour escapes and a little UTF-8) for correctness and speed tests.

#include <string>

namespace hoop::transcript::test {

inline std::string ordinary_text(size_t n) {
  static const char* const kLines[] = {
      "Jan 12 10:11:12 host systemd[1]: Started Daily apt download activities.\r\n",
      "\x1b[1;32mok\x1b[0m: [web-01] => changed=false, rc=0, msg=\"all fine\"\r\n",
      "drwxr-xr-x  2 root root  4096 Nov 23 14:52 /var/lib/dpkg/info/\r\n",
      "Setting up libssl3:amd64 (3.0.15-1~deb12u1) ... caf\xc3\xa9 na\xc3\xafve \xe2\x9c\x93\r\n",
      "    at org.example.Service.handle(Service.java:142) the quick brown fox\r\n",
  };
  std::string s;
  s.reserve(n + 128);
  unsigned i = 0;
  while (s.size() < n) {
    s += kLines[i % 5];
    i = i * 7 + 3;
  }
  s.resize(n);
  return s;
}

}  // namespace hoop::transcript::test
