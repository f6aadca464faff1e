// hoop-shell's lexer. Pure: text in, words or the refusal out.

#include "shell/lexer.h"

#include <cstdio>
#include <optional>

#include "common/escape.h"

namespace hoop::shell {
namespace {

constexpr std::string_view kQuoteHint = "; quote it (e.g. 'a;b') to pass it as text";

Error not_allowed(const std::string& construct, std::string_view why, bool quote_hint = true) {
  return make_error(Errc::permission_denied, construct + " is not allowed: " + std::string(why) +
                                                 (quote_hint ? std::string(kQuoteHint) : std::string()));
}

Error malformed(const std::string& what) {
  return make_error(Errc::invalid_argument, what);
}

std::string hex_byte(unsigned char c) {
  char buf[8];
  (void)std::snprintf(buf, sizeof buf, "0x%02x", c);
  return buf;
}

// Bytes a command line may not hold at all, quoted or not. Checked first,
// so no later message ever quotes a control character back.
std::optional<Error> check_bytes(std::string_view line) {
  if (line.size() > kMaxLineBytes)
    return malformed("the command is longer than " + std::to_string(kMaxLineBytes) + " bytes");
  for (size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c == 0) return malformed("a NUL byte in the command is not allowed");
    if (c == '\n')
      return make_error(Errc::permission_denied,
                        "a newline in the command is not allowed: hoop-shell runs one command per line");
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return malformed("control character " + hex_byte(c) + " in the command is not allowed");
    // C1 controls (U+0080..U+009F) act on terminals as ESC sequences do.
    if (c == 0xc2 && i + 1 < line.size()) {
      const auto d = static_cast<unsigned char>(line[i + 1]);
      if (d >= 0x80 && d <= 0x9f)
        return malformed("control character U+00" + hex_byte(d).substr(2) + " in the command is not allowed");
    }
  }
  if (!is_valid_utf8(line)) return malformed("the command is not valid UTF-8");
  return std::nullopt;
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Result<std::vector<std::string>> run() {
    while (i_ < s_.size()) {
      if (auto e = step()) return *e;
    }
    end_word();
    return std::move(words_);
  }

 private:
  char at(size_t j) const { return j < s_.size() ? s_[j] : '\0'; }

  void begin_word() {
    if (in_word_) return;
    in_word_ = true;
    cur_.clear();
    plain_digits_ = true;
    plain_name_ = true;
  }

  // A character that came from quotes or a backslash: literal, and the word
  // is no longer a bare fd number or variable name.
  void add_quoted(char c) {
    begin_word();
    cur_ += c;
    plain_digits_ = plain_name_ = false;
    prev_plain_ = '\0';
  }

  void add_plain(char c) {
    begin_word();
    cur_ += c;
    plain_digits_ = plain_digits_ && c >= '0' && c <= '9';
    plain_name_ = plain_name_ && (cur_.size() == 1 ? is_name_start(c) : is_name_char(c));
    prev_plain_ = c;
  }

  void end_word() {
    if (!in_word_) return;
    words_.push_back(std::move(cur_));
    cur_.clear();
    in_word_ = false;
    prev_plain_ = '\0';
  }

  std::optional<Error> step() {
    const char c = s_[i_];
    switch (c) {
      case ' ':
      case '\t':
        end_word();
        ++i_;
        return std::nullopt;
      case '\'':
        return single_quoted();
      case '"':
        return double_quoted();
      case '\\':
        if (i_ + 1 >= s_.size())
          return not_allowed("a backslash at the end of the line (line continuation)",
                             "hoop-shell runs one line as one command", false);
        add_quoted(s_[i_ + 1]);
        i_ += 2;
        return std::nullopt;
      case ';':
        return not_allowed("';' (a list of commands)", "hoop-shell runs one command per request");
      case '|':
        if (at(i_ + 1) == '|')
          return not_allowed("'||' (or-list)", "hoop-shell runs one command per request");
        return not_allowed(at(i_ + 1) == '&' ? "'|&' (pipe)" : "'|' (pipe)",
                           "hoop-shell runs one command per request");
      case '&':
        if (at(i_ + 1) == '&')
          return not_allowed("'&&' (and-list)", "hoop-shell runs one command per request");
        if (at(i_ + 1) == '>') return redirection();
        return not_allowed("'&' (background job)", "commands run in the foreground, one at a time");
      case '<':
      case '>':
        return redirection();
      case '(':
      case ')':
        return not_allowed(std::string("'") + c + "' (subshell or grouping)",
                           "hoop-shell runs one simple command per request");
      case '`':
        return not_allowed("command substitution '`...`'", "hoop-shell expands nothing");
      case '$':
        return dollar(false);
      case '*':
      case '?':
      case '[':
        return not_allowed(std::string("glob '") + c + "'", "hoop-shell expands no file names");
      case '~':
        if (!in_word_ || prev_plain_ == '=' || prev_plain_ == ':')
          return not_allowed("tilde expansion '~'", "write the directory out (e.g. /home/you)", false);
        break;
      case '#':
        if (!in_word_) return not_allowed("'#' (comment)", "hoop-shell takes the whole line as the command");
        break;
      case '!':
        return not_allowed("'!' (history expansion or negation)", "hoop-shell expands nothing");
      case '{':
        if (is_brace_expansion()) return not_allowed("brace expansion '{...}'", "hoop-shell expands nothing");
        break;
      case '=':
        if (words_.empty() && in_word_ && plain_name_)
          return not_allowed("variable assignment '" + cur_ + "='",
                             "commands run with a clean environment that hoop-shell does not change", false);
        break;
      default:
        break;
    }
    add_plain(c);
    ++i_;
    return std::nullopt;
  }

  std::optional<Error> single_quoted() {
    const size_t close = s_.find('\'', i_ + 1);
    if (close == std::string_view::npos) return malformed("unterminated single quote (')");
    begin_word();
    for (size_t j = i_ + 1; j < close; ++j) add_quoted(s_[j]);
    plain_digits_ = plain_name_ = false;  // '' alone is an empty word, not a name
    prev_plain_ = '\0';
    i_ = close + 1;
    return std::nullopt;
  }

  std::optional<Error> double_quoted() {
    begin_word();
    plain_digits_ = plain_name_ = false;
    prev_plain_ = '\0';
    for (size_t j = i_ + 1; j < s_.size();) {
      const char c = s_[j];
      if (c == '"') {
        i_ = j + 1;
        return std::nullopt;
      }
      if (c == '\\' && j + 1 < s_.size()) {
        const char n = s_[j + 1];
        // Inside "...", sh removes the backslash only before these.
        if (n == '$' || n == '`' || n == '"' || n == '\\') {
          add_quoted(n);
          j += 2;
          continue;
        }
      }
      if (c == '$') {
        i_ = j;
        return dollar(true);
      }
      if (c == '`')
        return not_allowed("command substitution '`...`'",
                           "hoop-shell expands nothing, inside \"...\" neither; use '...' for text");
      add_quoted(c);
      ++j;
    }
    return malformed("unterminated double quote (\")");
  }

  // At s_[i_] == '$'. sh expands it outside quotes and inside "...".
  std::optional<Error> dollar(bool in_double) {
    const std::string why = in_double
                                ? "hoop-shell expands nothing, inside \"...\" neither; write \\$ or use '...'"
                                : "hoop-shell expands nothing";
    const char n = at(i_ + 1);
    if (n == '(')
      return not_allowed(
          at(i_ + 2) == '(' ? "arithmetic expansion '$((...))'" : "command substitution '$(...)'", why);
    if (n == '{') return not_allowed("parameter expansion '${...}'", why);
    if (n == '\'' && !in_double) return not_allowed("ANSI-C quoting '$'...''", why);
    if (n == '"' && !in_double) return not_allowed("locale quoting '$\"...\"'", why);
    if (is_name_start(n)) {
      size_t j = i_ + 1;
      while (j < s_.size() && is_name_char(s_[j])) ++j;
      return not_allowed("variable expansion '$" + std::string(s_.substr(i_ + 1, j - i_ - 1)) + "'", why);
    }
    if ((n >= '0' && n <= '9') || std::string_view("@*#?$!-").find(n) != std::string_view::npos)
      return not_allowed(std::string("special parameter '$") + n + "'", why);
    return not_allowed("'$' (expansion)", why);
  }

  // At s_[i_] in "<>&": names the whole operator, with an fd number before it.
  std::optional<Error> redirection() {
    std::string op(1, s_[i_]);
    size_t j = i_ + 1;
    const char c = s_[i_];
    if (c == '&') {
      op += '>';  // &> or &>>
      ++j;
      if (at(j) == '>') op += '>';
    } else if (at(j) == '(') {
      return not_allowed(std::string("process substitution '") + c + "(...)'", "hoop-shell expands nothing");
    } else if (c == '<') {
      if (at(j) == '<') {
        op += '<';
        if (at(j + 1) == '<' || at(j + 1) == '-') op += at(j + 1);
      } else if (at(j) == '&' || at(j) == '>') {
        op += at(j);
      }
    } else if (at(j) == '>' || at(j) == '&' || at(j) == '|') {
      op += at(j);
    }
    const std::string fd = in_word_ && plain_digits_ ? cur_ : "";
    return not_allowed("redirection '" + fd + op + "'",
                       "the command reads and writes your terminal, never files hoop-shell opens");
  }

  // At s_[i_] == '{': sh would expand {a,b} and {1..3} within one word.
  bool is_brace_expansion() const {
    for (size_t j = i_ + 1; j < s_.size(); ++j) {
      const char c = s_[j];
      if (c == ' ' || c == '\t' || c == '\'' || c == '"' || c == '\\') return false;
      if (c == '}') {
        const std::string_view inner = s_.substr(i_ + 1, j - i_ - 1);
        return inner.find(',') != std::string_view::npos || inner.find("..") != std::string_view::npos;
      }
    }
    return false;
  }

  std::string_view s_;
  size_t i_ = 0;
  std::vector<std::string> words_;
  std::string cur_;
  bool in_word_ = false;
  bool plain_digits_ = true;  // cur_ is only unquoted digits (an fd before a redirection)
  bool plain_name_ = true;    // cur_ is an unquoted NAME (an assignment before '=')
  char prev_plain_ = '\0';    // the previous character, when it was unquoted
};

}  // namespace

Result<std::vector<std::string>> split_words(std::string_view line) {
  if (auto e = check_bytes(line)) return *e;
  return Lexer(line).run();
}

}  // namespace hoop::shell
