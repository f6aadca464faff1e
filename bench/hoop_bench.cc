// Load generator for hoopd: create->approve cycles, status reads, and many
// concurrent long-poll waiters with their wake-up delay. One thread, one
// coroutine per simulated client, HTTP/1.1 keep-alive, plain or TLS.
//
//   hoop_bench cycles  --url U --host-token T --approver-token T [--n 5000] [--concurrency 32]
//   hoop_bench reads   --url U --token T --id ID [--n 50000] [--concurrency 32]
//   hoop_bench waiters --url U --host-token T --approver-token T --pid HOOPD_PID [--n 5000] [--sample 1000]
// Prints one JSON object with the figures on stdout.

#include <algorithm>
#include <utility>  // Boost 1.74 awaitable.hpp needs std::exchange
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

struct Options {
  std::string mode, url, host_token, approver_token, token, ca;
  int n = 0, concurrency = 32, sample = 1000;
  long long id = 0;
  int pid = 0;
};

struct Target {
  bool tls = false;
  std::string host = "127.0.0.1";
  std::string port;
};

Target parse_url(const std::string& url) {
  Target t;
  std::string rest;
  if (url.rfind("https://", 0) == 0) { t.tls = true; rest = url.substr(8); }
  else if (url.rfind("http://", 0) == 0) rest = url.substr(7);
  else throw std::runtime_error("url must start with http:// or https://");
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("url needs a port");
  t.host = rest.substr(0, colon);
  t.port = rest.substr(colon + 1);
  while (!t.port.empty() && t.port.back() == '/') t.port.pop_back();
  return t;
}

// One keep-alive connection, plain or TLS.
class Conn {
 public:
  Conn(asio::io_context& io, asio::ssl::context& ssl, const Target& t) : t_(t) {
    if (t.tls) tls_.emplace(io, ssl);
    else plain_.emplace(io);
  }

  awaitable<void> connect() {
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver res(ex);
    auto eps = co_await res.async_resolve(t_.host, t_.port, use_awaitable);
    if (tls_) {
      co_await beast::get_lowest_layer(*tls_).async_connect(eps, use_awaitable);
      co_await tls_->async_handshake(asio::ssl::stream_base::client, use_awaitable);
    } else {
      co_await plain_->async_connect(eps, use_awaitable);
    }
  }

  awaitable<http::response<http::string_body>> call(http::verb verb, const std::string& target,
                                                    const std::string& token, const std::string& body) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, t_.host);
    req.set(http::field::authorization, "Bearer " + token);
    if (verb == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::response<http::string_body> res;
    if (tls_) {
      co_await http::async_write(*tls_, req, use_awaitable);
      co_await http::async_read(*tls_, buf_, res, use_awaitable);
    } else {
      co_await http::async_write(*plain_, req, use_awaitable);
      co_await http::async_read(*plain_, buf_, res, use_awaitable);
    }
    co_return res;
  }

 private:
  Target t_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buf_{512};
};

// Each request names its own service: identical commands would be answered
// with the live grant of the first one (grant reuse) instead of a new request.
std::string new_request_body(long long n) {
  static const std::string digest(64, 'a');
  return json{{"user", "alice"}, {"run_as", "root"},
              {"argv", {"systemctl", "restart", "svc-" + std::to_string(n)}},
              {"path", "/usr/bin/systemctl"}, {"digest", digest}, {"cwd", "/"}, {"tty", ""},
              {"reason", "bench"}}
      .dump();
}

long long id_of(const http::response<http::string_body>& r) {
  if (r.result_int() != 201) throw std::runtime_error("create failed: " + r.body());
  return json::parse(r.body()).at("id").get<long long>();
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

long proc_status_kb(int pid, const char* key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::string(key).size() + 1);
  return -1;
}

void run_all(asio::io_context& io) { io.run(); }

// A failed client must fail the benchmark, not vanish: rethrow out of run().
void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

json bench_cycles(const Options& o, asio::io_context& io, asio::ssl::context& ssl, const Target& t) {
  int next = 0, done = 0;
  std::vector<double> lat;
  auto worker = [&]() -> awaitable<void> {
    Conn c(io, ssl, t);
    co_await c.connect();
    while (next < o.n) {
      const long long n = ++next;
      auto t0 = Clock::now();
      auto r = co_await c.call(http::verb::post, "/v1/requests", o.host_token, new_request_body(n));
      long long id = id_of(r);
      auto a = co_await c.call(http::verb::post, "/v1/requests/" + std::to_string(id) + "/approve",
                               o.approver_token, "{}");
      if (a.result_int() != 200) throw std::runtime_error("approve failed: " + a.body());
      lat.push_back(ms_since(t0));
      ++done;
    }
  };
  auto t0 = Clock::now();
  for (int i = 0; i < o.concurrency; ++i) asio::co_spawn(io, worker(), rethrow);
  run_all(io);
  double secs = ms_since(t0) / 1000.0;
  return {{"mode", "cycles"}, {"cycles", done}, {"seconds", secs}, {"cycles_per_s", done / secs},
          {"concurrency", o.concurrency}, {"p50_ms", pct(lat, 50)}, {"p99_ms", pct(lat, 99)}};
}

json bench_reads(const Options& o, asio::io_context& io, asio::ssl::context& ssl, const Target& t) {
  int next = 0, done = 0;
  const std::string target = "/v1/requests/" + std::to_string(o.id);
  auto worker = [&]() -> awaitable<void> {
    Conn c(io, ssl, t);
    co_await c.connect();
    while (next < o.n) {
      ++next;
      auto r = co_await c.call(http::verb::get, target, o.token, "");
      if (r.result_int() != 200) throw std::runtime_error("read failed: " + r.body());
      ++done;
    }
  };
  auto t0 = Clock::now();
  for (int i = 0; i < o.concurrency; ++i) asio::co_spawn(io, worker(), rethrow);
  run_all(io);
  double secs = ms_since(t0) / 1000.0;
  return {{"mode", "reads"}, {"reads", done}, {"seconds", secs}, {"reads_per_s", done / secs},
          {"concurrency", o.concurrency}};
}

json bench_waiters(const Options& o, asio::io_context& io, asio::ssl::context& ssl, const Target& t) {
  std::vector<long long> ids;
  // 1. File n pending requests over a few connections.
  {
    int next = 0;
    auto filer = [&]() -> awaitable<void> {
      Conn c(io, ssl, t);
      co_await c.connect();
      while (next < o.n) {
        const long long n = ++next;
        ids.push_back(
            id_of(co_await c.call(http::verb::post, "/v1/requests", o.host_token, new_request_body(n))));
      }
    };
    for (int i = 0; i < 16; ++i) asio::co_spawn(io, filer(), rethrow);
    io.run();
    io.restart();
  }
  // 2. One connection per waiter, each long-polling its own request.
  std::map<long long, Clock::time_point> answered;
  int connected = 0, answers = 0;
  auto waiter = [&](long long id) -> awaitable<void> {
    Conn c(io, ssl, t);
    co_await c.connect();
    ++connected;
    auto r = co_await c.call(http::verb::get, "/v1/requests/" + std::to_string(id) + "?wait=120s",
                             o.host_token, "");
    answered[id] = Clock::now();
    ++answers;
    if (r.result_int() != 200) throw std::runtime_error("wait failed: " + r.body());
  };
  for (long long id : ids) asio::co_spawn(io, waiter(id), rethrow);

  // 3. Once all are parked on the server, approve a sample one at a time.
  json out;
  std::vector<double> delays;
  auto approver = [&]() -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer tm(ex);
    Conn c(io, ssl, t);
    co_await c.connect();
    for (int tries = 0; tries < 600; ++tries) {  // bounded: 60 s
      auto m = co_await c.call(http::verb::get, "/metrics", o.approver_token, "");
      auto pos = m.body().find("\nhoopd_waiters ");
      if (pos != std::string::npos && std::atol(m.body().c_str() + pos + 15) >= o.n) break;
      tm.expires_after(std::chrono::milliseconds(100));
      co_await tm.async_wait(use_awaitable);
    }
    out["rss_kb_with_waiters"] = proc_status_kb(o.pid, "VmRSS:");
    out["connected"] = connected;
    const int sample = std::min<int>(o.sample, static_cast<int>(ids.size()));
    for (int i = 0; i < sample; ++i) {
      long long id = ids[static_cast<size_t>(i)];
      auto t0 = Clock::now();
      auto a = co_await c.call(http::verb::post, "/v1/requests/" + std::to_string(id) + "/approve",
                               o.approver_token, "{}");
      if (a.result_int() != 200) throw std::runtime_error("approve failed: " + a.body());
      while (!answered.count(id)) {  // the waiter's answer is on this same thread
        tm.expires_after(std::chrono::microseconds(50));
        co_await tm.async_wait(use_awaitable);
      }
      delays.push_back(std::chrono::duration<double, std::milli>(answered[id] - t0).count());
    }
    io.stop();  // the remaining waiters are simply dropped
  };
  asio::co_spawn(io, approver(), rethrow);
  io.run();
  out["mode"] = "waiters";
  out["waiters"] = o.n;
  out["sampled_wakeups"] = delays.size();
  out["wake_p50_ms"] = pct(delays, 50);
  out["wake_p99_ms"] = pct(delays, 99);
  out["wake_max_ms"] = pct(delays, 100);
  out["rss_kb_peak"] = proc_status_kb(o.pid, "VmHWM:");
  return out;
}

Options parse_args(int argc, char** argv) {
  Options o;
  if (argc < 2) throw std::runtime_error("usage: hoop_bench cycles|reads|waiters --url URL ...");
  o.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--url") o.url = v;
    else if (k == "--host-token") o.host_token = v;
    else if (k == "--approver-token") o.approver_token = v;
    else if (k == "--token") o.token = v;
    else if (k == "--ca") o.ca = v;
    else if (k == "--n") o.n = std::stoi(v);
    else if (k == "--concurrency") o.concurrency = std::stoi(v);
    else if (k == "--sample") o.sample = std::stoi(v);
    else if (k == "--id") o.id = std::stoll(v);
    else if (k == "--pid") o.pid = std::stoi(v);
    else throw std::runtime_error("unknown option " + k);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse_args(argc, argv);
    Target t = parse_url(o.url);
    asio::io_context io(1);
    asio::ssl::context ssl(asio::ssl::context::tls_client);
    if (!o.ca.empty()) {
      ssl.load_verify_file(o.ca);
      ssl.set_verify_mode(asio::ssl::verify_peer);
    }
    json out;
    if (o.n <= 0) o.n = o.mode == "reads" ? 50000 : 5000;
    if (o.mode == "cycles") out = bench_cycles(o, io, ssl, t);
    else if (o.mode == "reads") out = bench_reads(o, io, ssl, t);
    else if (o.mode == "waiters") out = bench_waiters(o, io, ssl, t);
    else throw std::runtime_error("unknown mode " + o.mode);
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hoop_bench: %s\n", e.what());
    return 1;
  }
}
