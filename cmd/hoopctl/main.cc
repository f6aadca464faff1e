// hoopctl: the command engineers and reviewers type. Installed setuid root.
// MUST: drop privilege for good before parsing the command line, unless
//       argv[1] names a verb whose table entry says keep_root (only run),
//       or root_caller (only ship) and the caller is root already.
// MUST: print errors as one escaped line and exit with a documented status.
// MUST NOT: let an exception escape main.

#include <openssl/crypto.h>

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <iterator>
#include <string_view>

#include "commands.h"
#include "common/escape.h"
#include "sys/privilege.h"

// Runs before every C++ static constructor (Boost.Asio's OpenSSL
// initialiser among them): OpenSSL must not read openssl.cnf. Reading it
// cost about a millisecond on every `hoopctl run`, and what it would set
// (minimum TLS version, security level) the client sets in code
// (client/client.cc), so the result does not depend on that file.
__attribute__((constructor(101))) void skip_openssl_config() {
  (void)OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr);
}

namespace {

using namespace hoop::ctl;

constexpr Command kCommands[] = {
    {"run", "Run a command as root or another user once the policy and reviewers allow it",
     Privilege::keep_root, &setup_run},
    {"list", "List requests; by default the pending ones you can approve or deny", Privilege::drop_first,
     &setup_list},
    {"show", "Show one request in full: command, reason, decisions, who can still approve",
     Privilege::drop_first, &setup_show},
    {"approve", "Approve a request filed by someone else", Privilege::drop_first, &setup_approve},
    {"deny", "Deny a request, with the reason (-m) the requester will see", Privilege::drop_first,
     &setup_deny},
    {"cancel", "Cancel a pending request you filed", Privilege::drop_first, &setup_cancel},
    {"whoami", "Show which person the server takes your token for", Privilege::drop_first, &setup_whoami},
    {"sessions", "List recorded sessions you may see: running and finished", Privilege::drop_first,
     &setup_sessions},
    {"replay", "Play a finished session in your terminal, with its timing", Privilege::drop_first,
     &setup_replay},
    {"watch", "Follow a running session live, from its start", Privilege::drop_first, &setup_watch},
    {"ship", "Send hoopd the transcripts left in this host's spool (root; from a timer)",
     Privilege::root_caller, &setup_ship},
};

constexpr const char* kFooter =
    "Exit status: 0 ok; 1 error or refused by the server; 2 bad usage; 3 server unreachable;\n"
    "4 permission denied (separation of duties); 5 no such request.\n"
    "Config: " HOOP_SYSCONFDIR
    "/hoop.toml. Token: $HOOP_TOKEN or ~/.config/hoop/token (mode 0600).\n"
    "See hoopctl(1).";

const Command* find_command(std::string_view name) {
  for (const auto& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

// Escapes only when needed: messages from lower layers are escaped already,
// but nothing raw may reach the terminal even if one forgot.
void print_error(const std::string& msg) {
  const std::string safe = hoop::is_clean_text(msg) ? msg : hoop::escape_for_terminal(msg);
  (void)std::fprintf(stderr, "hoopctl: %s\n", safe.c_str());
}

int run(int argc, char** argv) {
  // Decided on argv[1] alone, before CLI11 sees anything: every path that is
  // not a keep_root verb (typos, --help, nothing) runs unprivileged.
  const Command* chosen = argc > 1 ? find_command(argv[1]) : nullptr;
  const bool keep = chosen != nullptr && (chosen->privilege == Privilege::keep_root ||
                                          (chosen->privilege == Privilege::root_caller && ::getuid() == 0));
  if (!keep) {
    if (auto st = hoop::sys::drop_privileges_permanently(); !st) {
      print_error("cannot drop privileges: " + st.error().message);
      return kExitError;
    }
  }

  // A mistyped verb gets a clearer message than CLI11's "subcommand required".
  if (argc > 1 && argv[1][0] != '-' && chosen == nullptr) {
    std::string names;
    for (const auto& c : kCommands) names += std::string(names.empty() ? "" : ", ") + c.name;
    print_error(hoop::escape_for_terminal(argv[1]) + " is not a hoopctl command; commands: " + names);
    return kExitUsage;
  }

  CLI::App app{"hoopctl: ask for, approve and deny privileged commands (hoop)", "hoopctl"};
  app.footer(kFooter);
  app.set_version_flag("--version", "hoopctl 0.1.0");
  app.require_subcommand(1);
  Runner runners[std::size(kCommands)];
  CLI::App* subs[std::size(kCommands)];
  for (size_t i = 0; i < std::size(kCommands); ++i) {
    subs[i] = app.add_subcommand(kCommands[i].name, kCommands[i].summary);
    runners[i] = kCommands[i].setup(*subs[i]);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string help = "hoopctl --help";
    for (size_t i = 0; i < std::size(kCommands); ++i)
      if (subs[i]->parsed()) help = std::string("hoopctl ") + kCommands[i].name + " --help";
    print_error(std::string(e.what()) + "; see: " + help);
    return kExitUsage;
  }

  for (size_t i = 0; i < std::size(kCommands); ++i) {
    if (!subs[i]->parsed()) continue;
    auto r = runners[i]();
    if (!r) {
      print_error(r.error().message);
      return exit_code_for(r.error());
    }
    return *r;
  }
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    print_error(std::string("internal error: ") + e.what());
  } catch (...) {
    print_error("internal error");
  }
  return kExitError;
}
