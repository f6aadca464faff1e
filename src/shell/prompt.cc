// The interactive prompt, on libedit.

#include "shell/prompt.h"

#include <histedit.h>

#include <cstdio>
#include <deque>
#include <memory>

#include "common/escape.h"
#include "shell/os.h"

namespace hoop::shell {
namespace {

constexpr size_t kHistoryLines = 1000;

struct EditorState {
  std::string prompt;
};

char* prompt_of(EditLine* el) {
  void* data = nullptr;
  el_get(el, EL_CLIENTDATA, &data);
  static char fallback[] = "hoop$ ";
  return data ? static_cast<EditorState*>(data)->prompt.data() : fallback;
}

/// One libedit editor with its history, freed together.
class Editor {
 public:
  Editor() : el_(el_init("hoop-shell", stdin, stdout, stderr)), hist_(history_init()) {
    if (!el_ || !hist_) return;
    HistEvent ev;
    history(hist_, &ev, H_SETSIZE, static_cast<int>(kHistoryLines));
    history(hist_, &ev, H_SETUNIQUE, 1);
    el_set(el_, EL_CLIENTDATA, &state_);
    el_set(el_, EL_PROMPT, &prompt_of);
    el_set(el_, EL_EDITOR, "emacs");
    el_set(el_, EL_HIST, history, hist_);
  }
  ~Editor() {
    if (el_) el_end(el_);
    if (hist_) history_end(hist_);
  }
  Editor(const Editor&) = delete;
  Editor& operator=(const Editor&) = delete;

  bool ok() const { return el_ != nullptr && hist_ != nullptr; }

  enum class Got { line, interrupted, end };

  Got read(const std::string& prompt, std::string& line) {
    state_.prompt = prompt;
    if (take_resize()) el_resize(el_);
    (void)take_interrupt();
    int count = 0;
    const char* got = el_gets(el_, &count);
    if (take_interrupt()) return Got::interrupted;
    if (got == nullptr || count <= 0) return Got::end;
    line.assign(got, static_cast<size_t>(count));
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return Got::line;
  }

  void remember(const std::string& line) {
    HistEvent ev;
    history(hist_, &ev, H_ENTER, line.c_str());
    lines_.push_back(line);
    if (lines_.size() > kHistoryLines) lines_.pop_front();
  }

  std::vector<std::string> lines() const { return {lines_.begin(), lines_.end()}; }

 private:
  EditLine* el_;
  History* hist_;
  EditorState state_;
  std::deque<std::string> lines_;
};

std::string prompt_text(Os& os, const PromptInfo& info) {
  std::string dir = os.current_dir();
  if (dir == info.home)
    dir = "~";
  else if (dir.starts_with(info.home + "/"))
    dir = "~" + dir.substr(info.home.size());
  return "hoop " + escape_for_terminal(info.user) + "@" + escape_for_terminal(info.host) + ":" +
         escape_for_terminal(dir) + "$ ";
}

bool blank(const std::string& s) {
  return s.find_first_not_of(" \t") == std::string::npos;
}

}  // namespace

int run_interactive(Shell& sh, Os& os, const PromptInfo& info) {
  Editor ed;
  if (!ed.ok()) {
    sh.say("cannot start line editing (libedit)");
    return kExitShellError;
  }
  sh.set_history([&ed] { return ed.lines(); });
  for (;;) {
    std::string line;
    switch (ed.read(prompt_text(os, info), line)) {
      case Editor::Got::end:
        (void)std::fputs("\n", stdout);
        (void)std::fflush(stdout);
        return sh.status();
      case Editor::Got::interrupted:
        (void)std::fputs("\n", stdout);  // Ctrl-C: the line is dropped, a fresh prompt
        continue;
      case Editor::Got::line:
        break;
    }
    if (blank(line)) continue;
    ed.remember(line);
    (void)sh.execute(line, false);
    if (sh.exit_requested()) return sh.status();
  }
}

}  // namespace hoop::shell
