// hoop-shell's rules. Pure.

#include "shell/rules.h"

#include <algorithm>

#include "common/escape.h"

namespace hoop::shell {
namespace {

constexpr std::string_view kConfig = " in the [shell] table of /etc/hoop/hoop.toml";

// Words a user would type expecting shell syntax or a shell builtin; as a
// command name they would only be looked up in secure_path and confuse.
constexpr std::string_view kShellWords[] = {
    "if",    "then",     "else",  "elif",   "fi",     "case",    "esac",    "for",     "while",
    "until", "do",       "done",  "in",     "select", "coproc",  "{",       "}",       "[[",
    "]]",    "function", "exec",  "eval",   "source", ".",       "export",  "unset",   "set",
    "alias", "unalias",  "trap",  "ulimit", "umask",  "builtin", "command", "declare", "typeset",
    "local", "readonly", "shopt", "enable", "hash",   "bind",    "fc",      "jobs",    "fg",
    "bg",    "disown",   "wait",  "logout", "return"};

struct BuiltinName {
  std::string_view name;
  Builtin builtin;
};
constexpr BuiltinName kBuiltins[] = {
    {"help", Builtin::help},       {"exit", Builtin::exit}, {"requests", Builtin::requests},
    {"history", Builtin::history}, {"cd", Builtin::cd},     {"pwd", Builtin::pwd}};

std::string_view base_name(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

Decision refuse(std::string message) {
  Decision d;
  d.action = Action::refuse;
  d.message = std::move(message);
  return d;
}

Decision transfer(std::vector<std::string> argv) {
  Decision d;
  d.action = Action::transfer;
  d.argv = std::move(argv);
  return d;
}

std::string not_allowed(std::string_view what, std::string_view key) {
  return std::string(what) + " is not allowed on this account; an admin can set " + std::string(key) +
         " = true" + std::string(kConfig);
}

// scp's server side, as the scp client starts it: scp [-r -p -d -v -q -T]
// (-t | -f) [--] PATH. Anything else (client options such as -S, -o) is
// refused: only the protocol's own flags reach the real scp.
Decision scp(const std::vector<std::string>& w, const config::ShellConfig& cfg) {
  if (!cfg.allow_scp) return refuse(not_allowed("scp (file copy over the scp protocol)", "allow_scp"));
  std::vector<std::string> argv{kScpPath};
  size_t i = 1;
  bool mode = false;
  for (; i < w.size(); ++i) {
    const std::string& a = w[i];
    if (a == "--") {
      argv.push_back(a);
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;
    if (a.find_first_not_of("tfrpdvqT", 1) != std::string::npos)
      return refuse("scp option " + quote_arg(a) + " is not one the scp protocol uses; refused");
    mode = mode || a.find_first_of("tf") != std::string::npos;
    argv.push_back(a);
  }
  if (!mode) return refuse("scp without -t or -f is not a file transfer; refused");
  if (w.size() - i != 1) return refuse("scp -t/-f takes exactly one path; refused");
  argv.push_back(w[i]);
  return transfer(std::move(argv));
}

}  // namespace

Decision classify(const std::vector<std::string>& words, const config::ShellConfig& cfg) {
  if (words.empty()) return refuse("nothing to run");
  const std::string& cmd = words[0];
  for (const auto& b : kBuiltins) {
    if (cmd == b.name) {
      Decision d;
      d.action = Action::builtin;
      d.builtin = b.builtin;
      d.argv = words;
      return d;
    }
  }
  if (std::find(std::begin(kShellWords), std::end(kShellWords), cmd) != std::end(kShellWords))
    return refuse("'" + cmd +
                  "' is shell syntax or a shell builtin that hoop-shell does not have; type help");

  const std::string_view base = base_name(cmd);
  if (base == "scp" && std::any_of(words.begin() + 1, words.end(), [](const std::string& a) {
        return a.size() >= 2 && a[0] == '-' && a.find_first_of("tf") != std::string::npos &&
               a.find_first_not_of("tfrpdvqT", 1) == std::string::npos;
      }))
    return scp(words, cfg);
  if (cmd == "internal-sftp" || base == "sftp-server") {
    if (!cfg.allow_sftp) return refuse(not_allowed("sftp (file transfer)", "allow_sftp"));
    return transfer({kSftpServerPath});  // the admin's subsystem options are not the user's to choose
  }
  if (base == "rsync" && words.size() >= 2 && words[1] == "--server") {
    if (!cfg.allow_rsync) return refuse(not_allowed("rsync (file transfer)", "allow_rsync"));
    std::vector<std::string> argv = words;
    argv[0] = kRsyncPath;
    return transfer(std::move(argv));
  }

  Decision d;
  d.action = Action::request;
  d.argv = words;
  return d;
}

bool is_within(std::string_view dir, std::string_view base) {
  if (base.empty() || base[0] != '/' || dir.empty() || dir[0] != '/') return false;
  if (base == "/") return true;
  if (base.ends_with('/')) base.remove_suffix(1);
  if (!dir.starts_with(base)) return false;
  return dir.size() == base.size() || dir[base.size()] == '/';
}

std::string agent_forwarding_refusal(bool agent_socket_set, const config::ShellConfig& cfg) {
  if (!agent_socket_set || cfg.allow_agent_forwarding) return "";
  return "ssh agent forwarding is not allowed on this account (an approved command could use your keys); "
         "connect without -A, or an admin can set allow_agent_forwarding = true" +
         std::string(kConfig);
}

}  // namespace hoop::shell
