// The lexer: words, quoting, and a refusal naming every construct.

#include "shell/lexer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hoop::shell {
namespace {

using Words = std::vector<std::string>;

Words words(std::string_view line) {
  auto r = split_words(line);
  EXPECT_TRUE(r.ok()) << line << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Words{};
}

// The refusal's message; fails the test if the line was accepted.
std::string refusal(std::string_view line, Errc code = Errc::permission_denied) {
  auto r = split_words(line);
  EXPECT_FALSE(r.ok()) << "accepted: " << line;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, code) << line << ": " << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "one line";
  return r.error().message;
}

#define EXPECT_REFUSED(line, part)                                                  \
  do {                                                                              \
    const std::string m_ = refusal(line);                                           \
    EXPECT_NE(m_.find(part), std::string::npos) << (line) << " -> message: " << m_; \
  } while (0)

#define EXPECT_MALFORMED(line, part)                                                \
  do {                                                                              \
    const std::string m_ = refusal(line, Errc::invalid_argument);                   \
    EXPECT_NE(m_.find(part), std::string::npos) << (line) << " -> message: " << m_; \
  } while (0)

TEST(Lexer, PlainWordsAndBlanks) {
  EXPECT_EQ(words("systemctl restart nginx"), (Words{"systemctl", "restart", "nginx"}));
  EXPECT_EQ(words("  ls \t -l   /var/log  "), (Words{"ls", "-l", "/var/log"}));
  EXPECT_EQ(words(""), Words{});
  EXPECT_EQ(words(" \t "), Words{});
  EXPECT_EQ(words("x a=b"), (Words{"x", "a=b"})) << "not first: not an assignment";
  EXPECT_EQ(
      words("echo a=b c:d x~ y#z a]b {} {a} a}b %1 ^ @ + , ."),
      (Words{"echo", "a=b", "c:d", "x~", "y#z", "a]b", "{}", "{a}", "a}b", "%1", "^", "@", "+", ",", "."}));
  EXPECT_EQ(words("grüße ✓"), (Words{"grüße", "✓"}));
}

TEST(Lexer, SingleQuotesAreLiteral) {
  EXPECT_EQ(words("echo 'a;b'"), (Words{"echo", "a;b"}));
  EXPECT_EQ(words("echo 'a | b && c || d & e > f < g >> h 2>&1 <<EOF'"),
            (Words{"echo", "a | b && c || d & e > f < g >> h 2>&1 <<EOF"}));
  EXPECT_EQ(words("echo '$HOME ${x} $(id) `id` * ? [a] ~ # ! {a,b} \\ \"'"),
            (Words{"echo", "$HOME ${x} $(id) `id` * ? [a] ~ # ! {a,b} \\ \""}));
  EXPECT_EQ(words("echo ''"), (Words{"echo", ""}));
  EXPECT_EQ(words("echo a'b c'd"), (Words{"echo", "ab cd"}));
  EXPECT_EQ(words("'FOO=bar' x"), (Words{"FOO=bar", "x"}));
  EXPECT_EQ(words("echo 'tab\there'"), (Words{"echo", "tab\there"}));
}

TEST(Lexer, DoubleQuotes) {
  EXPECT_EQ(words("echo \"a;b|c&d>e<f*g?h[i]~j#k!l\""), (Words{"echo", "a;b|c&d>e<f*g?h[i]~j#k!l"}));
  EXPECT_EQ(words("echo \"\""), (Words{"echo", ""}));
  EXPECT_EQ(words("echo \"a \\\" b\""), (Words{"echo", "a \" b"}));
  EXPECT_EQ(words("echo \"\\$HOME \\` \\\\\""), (Words{"echo", "$HOME ` \\"}));
  EXPECT_EQ(words("echo \"\\n\\a\""), (Words{"echo", "\\n\\a"})) << "other backslashes stay, as in sh";
  EXPECT_EQ(words("echo \"it's\""), (Words{"echo", "it's"}));
  EXPECT_EQ(words("echo 'say \"hi\"'"), (Words{"echo", "say \"hi\""}));
  EXPECT_EQ(words("a\"b c\"'d e'f"), (Words{"ab cd ef"}));
}

TEST(Lexer, Backslashes) {
  EXPECT_EQ(words("echo a\\;b \\| \\& \\> \\< \\$x \\` \\* \\? \\[ \\~ \\# \\! \\( \\)"),
            (Words{"echo", "a;b", "|", "&", ">", "<", "$x", "`", "*", "?", "[", "~", "#", "!", "(", ")"}));
  EXPECT_EQ(words("echo a\\ b"), (Words{"echo", "a b"}));
  EXPECT_EQ(words("echo \\\\"), (Words{"echo", "\\"}));
  EXPECT_EQ(words("echo \\'"), (Words{"echo", "'"}));
  EXPECT_EQ(words("FOO\\=bar"), (Words{"FOO=bar"}));
  EXPECT_EQ(words("echo \\é"), (Words{"echo", "é"}));
  EXPECT_EQ(words("find . -exec ls {} \\;"), (Words{"find", ".", "-exec", "ls", "{}", ";"}));
}

TEST(Lexer, ListsPipesAndBackground) {
  EXPECT_REFUSED("ls; id", "';' (a list of commands) is not allowed");
  EXPECT_REFUSED("ls;", "';'");
  EXPECT_REFUSED(";", "';'");
  EXPECT_REFUSED("ls | wc", "'|' (pipe) is not allowed");
  EXPECT_REFUSED("ls|wc", "'|' (pipe)");
  EXPECT_REFUSED("ls |& wc", "'|&' (pipe)");
  EXPECT_REFUSED("true && id", "'&&' (and-list) is not allowed");
  EXPECT_REFUSED("false || id", "'||' (or-list) is not allowed");
  EXPECT_REFUSED("sleep 10 &", "'&' (background job) is not allowed");
  EXPECT_REFUSED("sleep 10& id", "'&' (background job)");
  EXPECT_REFUSED("ls; id", "quote it");
}

TEST(Lexer, Redirections) {
  EXPECT_REFUSED("ls > out", "redirection '>' is not allowed");
  EXPECT_REFUSED("ls >out", "redirection '>'");
  EXPECT_REFUSED("ls >> out", "redirection '>>'");
  EXPECT_REFUSED("cat < in", "redirection '<'");
  EXPECT_REFUSED("ls 2> err", "redirection '2>'");
  EXPECT_REFUSED("ls 2>&1", "redirection '2>&'");
  EXPECT_REFUSED("ls 10>x", "redirection '10>'");
  EXPECT_REFUSED("ls a2>x", "redirection '>'");  // a2 is a word, not an fd
  EXPECT_REFUSED("cat << EOF", "redirection '<<'");
  EXPECT_REFUSED("cat <<- EOF", "redirection '<<-'");
  EXPECT_REFUSED("cat <<< word", "redirection '<<<'");
  EXPECT_REFUSED("cat <> f", "redirection '<>'");
  EXPECT_REFUSED("cat <&3", "redirection '<&'");
  EXPECT_REFUSED("ls >| f", "redirection '>|'");
  EXPECT_REFUSED("ls &> f", "redirection '&>'");
  EXPECT_REFUSED("ls &>> f", "redirection '&>>'");
  EXPECT_REFUSED("diff <(ls) x", "process substitution '<(...)'");
  EXPECT_REFUSED("tee >(cat)", "process substitution '>(...)'");
}

TEST(Lexer, SubstitutionsAndExpansions) {
  EXPECT_REFUSED("echo $(id)", "command substitution '$(...)' is not allowed");
  EXPECT_REFUSED("echo $((1+1))", "arithmetic expansion '$((...))'");
  EXPECT_REFUSED("echo `id`", "command substitution '`...`'");
  EXPECT_REFUSED("echo $HOME", "variable expansion '$HOME' is not allowed");
  EXPECT_REFUSED("echo a$USER_1b", "variable expansion '$USER_1b'");
  EXPECT_REFUSED("echo ${HOME}", "parameter expansion '${...}'");
  EXPECT_REFUSED("echo $1", "special parameter '$1'");
  EXPECT_REFUSED("echo $?", "special parameter '$?'");
  EXPECT_REFUSED("echo $$", "special parameter '$$'");
  EXPECT_REFUSED("echo $'\\x41'", "ANSI-C quoting");
  EXPECT_REFUSED("echo $\"x\"", "locale quoting");
  EXPECT_REFUSED("echo $", "'$' (expansion)");
  EXPECT_REFUSED("echo a$ b", "'$' (expansion)");
  // sh expands these inside double quotes too.
  EXPECT_REFUSED("echo \"$HOME\"", "variable expansion '$HOME'");
  EXPECT_REFUSED("echo \"$(id)\"", "command substitution '$(...)'");
  EXPECT_REFUSED("echo \"${x}\"", "parameter expansion");
  EXPECT_REFUSED("echo \"`id`\"", "command substitution '`...`'");
  EXPECT_REFUSED("echo \"a $\"", "'$' (expansion)");
}

TEST(Lexer, GlobsTildeAndOtherSyntax) {
  EXPECT_REFUSED("ls *", "glob '*' is not allowed");
  EXPECT_REFUSED("ls /var/log/*.log", "glob '*'");
  EXPECT_REFUSED("ls file?", "glob '?'");
  EXPECT_REFUSED("ls [ab]", "glob '['");
  EXPECT_REFUSED("[ -f x ]", "glob '['");
  EXPECT_REFUSED("ls ~", "tilde expansion '~'");
  EXPECT_REFUSED("ls ~root/x", "tilde expansion '~'");
  EXPECT_REFUSED("ls --dir=~/x", "tilde expansion '~'");
  EXPECT_REFUSED("ls PATH=/a:~/b", "tilde expansion '~'");
  EXPECT_REFUSED("ls # comment", "'#' (comment)");
  EXPECT_REFUSED("#ls", "'#' (comment)");
  EXPECT_REFUSED("(id)", "'(' (subshell or grouping)");
  EXPECT_REFUSED("id )", "')' (subshell or grouping)");
  EXPECT_REFUSED("! id", "'!' (history expansion or negation)");
  EXPECT_REFUSED("echo !!", "'!'");
  EXPECT_REFUSED("echo {a,b}", "brace expansion '{...}'");
  EXPECT_REFUSED("echo x{1..3}", "brace expansion '{...}'");
  EXPECT_REFUSED("FOO=bar id", "variable assignment 'FOO='");
  EXPECT_REFUSED("_x1=", "variable assignment '_x1='");
  EXPECT_REFUSED("echo done \\", "a backslash at the end of the line (line continuation)");
}

TEST(Lexer, Newlines) {
  EXPECT_REFUSED("ls\nid", "a newline in the command is not allowed");
  EXPECT_REFUSED("ls\n", "a newline");
  EXPECT_REFUSED("echo 'a\nb'", "a newline");  // not even quoted
  EXPECT_REFUSED("echo \"a\nb\"", "a newline");
  EXPECT_REFUSED("echo a\\\nb", "a newline");
}

TEST(Lexer, UnterminatedQuotes) {
  EXPECT_MALFORMED("echo 'abc", "unterminated single quote");
  EXPECT_MALFORMED("'", "unterminated single quote");
  EXPECT_MALFORMED("echo \"abc", "unterminated double quote");
  EXPECT_MALFORMED("echo \"abc\\\"", "unterminated double quote");
  EXPECT_MALFORMED("echo \"", "unterminated double quote");
  EXPECT_MALFORMED("echo \"a\\", "unterminated double quote");
}

TEST(Lexer, NulControlAndInvalidBytes) {
  EXPECT_MALFORMED(std::string_view("ls\0 -l", 6), "a NUL byte in the command");
  EXPECT_MALFORMED(std::string_view("echo '\0'", 8), "a NUL byte");
  EXPECT_MALFORMED("ls\r", "control character 0x0d");
  EXPECT_MALFORMED("echo \x1b]0;pwned\x07", "control character 0x1b");
  EXPECT_MALFORMED("echo '\x01'", "control character 0x01");
  EXPECT_MALFORMED("echo \x7f", "control character 0x7f");
  EXPECT_MALFORMED(
      "echo \xc2\x9b"
      "31m",
      "control character U+009b");
  EXPECT_MALFORMED("echo \xff", "not valid UTF-8");
  EXPECT_MALFORMED("echo \xc0\xaf", "not valid UTF-8");
  EXPECT_MALFORMED("echo \xe2\x82", "not valid UTF-8");
  EXPECT_MALFORMED(std::string(kMaxLineBytes + 1, 'a'), "longer than");
  // No message ever carries the raw bytes back.
  const std::string m = refusal("echo \x1b[2J", Errc::invalid_argument);
  EXPECT_EQ(m.find('\x1b'), std::string::npos);
}

TEST(Lexer, FirstRefusalWins) {
  EXPECT_REFUSED("ls | wc; id", "'|' (pipe)");
  EXPECT_REFUSED("echo 'ok' ; $(x)", "';'");
}

// A cheap stand-in for the fuzzer: every short string over the interesting
// alphabet either splits or is refused; nothing crashes, nothing accepted
// holds an unquoted metacharacter's effect.
TEST(Lexer, ExhaustiveShortInputsNeverCrash) {
  const std::string alphabet = "a '\"\\;|&<>$`*?[~#!(){},=2\t";
  std::string s;
  size_t accepted = 0;
  for (char a : alphabet)
    for (char b : alphabet)
      for (char c : alphabet) {
        s = {a, b, c};
        auto r = split_words(s);
        if (r.ok())
          ++accepted;
        else
          EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
      }
  EXPECT_GT(accepted, 0u);
}

}  // namespace
}  // namespace hoop::shell
