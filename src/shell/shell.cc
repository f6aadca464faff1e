// hoop-shell's core: lexer -> rules -> builtin, transfer or hoopctl run.

#include "shell/shell.h"

#include <charconv>

#include "common/escape.h"
#include "shell/lexer.h"

namespace hoop::shell {

Shell::Shell(ShellOptions o, Os& os, std::ostream& out, std::ostream& err)
    : o_(std::move(o)), os_(os), out_(out), err_(err) {}

void Shell::say(std::string_view msg) {
  err_ << "hoop-shell: " << (is_clean_text(msg) ? std::string(msg) : escape_for_terminal(msg)) << "\n";
  err_.flush();
}

int Shell::execute(std::string_view line, bool last) {
  auto words = split_words(line);
  if (!words) {
    say("refused: " + words.error().message);
    return status_ = kExitRefused;
  }
  if (words->empty()) return status_;
  const Decision d = classify(*words, o_.cfg);
  switch (d.action) {
    case Action::builtin:
      return status_ = builtin(d);
    case Action::transfer:
      return status_ = launch(d.argv, transfer_env(), last);
    case Action::request: {
      std::vector<std::string> argv{o_.hoopctl, "run", "--"};
      argv.insert(argv.end(), d.argv.begin(), d.argv.end());
      return status_ = launch(argv, o_.env, last);
    }
    case Action::refuse:
      break;
  }
  // Refusals, and any value that is not one of the above (fail closed).
  say("refused: " + (d.message.empty() ? std::string("not allowed") : d.message));
  return status_ = kExitRefused;
}

int Shell::login_session(bool last) {
  return status_ = launch({o_.hoopctl, "run", "-u", o_.user, "--", o_.cfg.login_shell, "-l"}, o_.env, last);
}

int Shell::launch(const std::vector<std::string>& argv, const std::vector<std::string>& env, bool last) {
  out_.flush();
  err_.flush();
  if (last) {
    const Error e = os_.replace(argv, env);
    say("cannot run " + argv[0] + ": " + e.message);
    return kExitShellError;
  }
  auto st = os_.run(argv, env);
  if (!st) {
    say("cannot run " + argv[0] + ": " + st.error().message);
    return kExitShellError;
  }
  return *st;
}

// An allowed transfer runs as the user, in the home directory sshd chose:
// it gets the allow-list plus who it runs as, and a fixed PATH.
std::vector<std::string> Shell::transfer_env() const {
  std::vector<std::string> env = o_.env;
  env.push_back("HOME=" + o_.home);
  env.push_back("USER=" + o_.user);
  env.push_back("LOGNAME=" + o_.user);
  env.push_back("PATH=/usr/bin:/bin");
  return env;
}

int Shell::builtin(const Decision& d) {
  const auto& a = d.argv;
  switch (d.builtin) {
    case Builtin::help:
      out_ << help_text();
      return 0;
    case Builtin::exit: {
      exit_requested_ = true;
      if (a.size() == 1) return status_;
      int n = -1;
      const auto [p, ec] = std::from_chars(a[1].data(), a[1].data() + a[1].size(), n);
      if (a.size() > 2 || ec != std::errc() || p != a[1].data() + a[1].size() || n < 0 || n > 255) {
        exit_requested_ = false;
        say("exit: usage: exit [STATUS], STATUS 0-255");
        return 1;
      }
      return n;
    }
    case Builtin::requests:
      return requests();
    case Builtin::history: {
      const auto lines = history_ ? history_() : std::vector<std::string>{};
      for (size_t i = 0; i < lines.size(); ++i)
        out_ << (i + 1) << "  " << escape_for_terminal(lines[i]) << "\n";
      return 0;
    }
    case Builtin::cd:
      return cd(a);
    case Builtin::pwd:
      out_ << escape_for_terminal(os_.current_dir()) << "\n";
      return 0;
    case Builtin::none:
      break;
  }
  return 1;
}

int Shell::cd(const std::vector<std::string>& argv) {
  if (argv.size() > 2) {
    say("cd: too many arguments");
    return 1;
  }
  const std::string target = argv.size() == 1 ? o_.home : argv[1];
  if (target.empty()) {
    say("cd: empty directory name");
    return 1;
  }
  const std::string path = target[0] == '/' ? target : os_.current_dir() + "/" + target;
  auto dir = os_.canonical(path);
  if (!dir) {
    say("cd: " + target + ": " + dir.error().message);
    return 1;
  }
  std::vector<std::string> bases{o_.home};
  bases.insert(bases.end(), o_.cfg.cd_dirs.begin(), o_.cfg.cd_dirs.end());
  std::vector<std::string> allowed;
  for (const std::string& base : bases) {
    // Compared canonically, so neither .. nor a symlink leads outside.
    if (auto c = os_.canonical(base)) allowed.push_back(*c);
  }
  bool ok = false;
  for (const auto& base : allowed) ok = ok || is_within(*dir, base);
  if (!ok) {
    std::string list;
    for (const auto& b : allowed) list += (list.empty() ? "" : ", ") + b;
    say("refused: cd to " + *dir + " is not allowed: this account may use only " +
        (list.empty() ? std::string("no directory") : list) + " and below (cd_dirs in [shell])");
    return kExitRefused;
  }
  if (auto st = os_.change_dir(*dir); !st) {
    say("cd: " + target + ": " + st.error().message);
    return 1;
  }
  return 0;
}

// The reviewer verbs need the user's personal token; without one, hoopctl
// would fail with a message about tokens that a bastion user cannot act on.
int Shell::requests() {
  const std::string token = o_.home + "/.config/hoop/token";
  if (!os_.exists(token)) {
    say("requests: you have no personal hoop token (" + token +
        "), so your requests cannot be listed here; ask an admin for one (hoopd token create --user " +
        o_.user + ")");
    return 1;
  }
  return launch({o_.hoopctl, "list", "--all", "--state", "pending"}, o_.env, false);
}

std::string help_text() {
  return "hoop-shell: every command is a request to hoopd, run through `hoopctl run` once the policy\n"
         "and the reviewers allow it, recorded while it runs.\n"
         "\n"
         "Type one command per line: words, 'single quotes', \"double quotes\" and \\ escapes.\n"
         "Not allowed: ; | & && || (lists, pipes, background jobs), < > >> 2> << (redirections),\n"
         "$VAR ${...} $(...) `...` (expansion, substitution), * ? [ (globs), ~ (home), # (comments),\n"
         "newlines; quote a character to pass it as text, e.g. echo 'a;b'.\n"
         "\n"
         "Builtins:\n"
         "  help            this text\n"
         "  requests        your pending requests (needs your personal hoop token)\n"
         "  history         the lines typed in this session\n"
         "  cd [DIR]        change directory, within your home and the directories the admin allows\n"
         "  pwd             print the current directory\n"
         "  exit [STATUS]   leave (Ctrl-D too)\n"
         "Ctrl-C cancels the line you are typing, or the request you are waiting for.\n"
         "\n"
         "Exit status: the command's own (via hoopctl run, which uses 118-125 and 127 for its own\n"
         "refusals); 117 refused by hoop-shell's rules; 116 hoop-shell could not run. See hoop-shell(1).\n";
}

}  // namespace hoop::shell
