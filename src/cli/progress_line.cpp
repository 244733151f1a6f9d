#include "cli/progress_line.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "app/units.h"

namespace mc::cli {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRedraw = std::chrono::milliseconds(100);

std::string amount(uint64_t n, bool bytes) { return bytes ? app::human_bytes(n) : std::to_string(n); }

std::string duration(double s) {
  const auto t = static_cast<long long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}

}  // namespace

struct ProgressLine::State {
  std::mutex mu;
  Clock::time_point start = Clock::now();
  Clock::time_point last{};
  size_t width = 0;  // characters of the line on screen

  void draw(const ProgressEvent& e) {
    std::lock_guard lock(mu);
    const auto now = Clock::now();
    const bool finished = e.total > 0 && e.done >= e.total;
    if (!finished && width > 0 && now - last < kRedraw) return;
    last = now;
    const double secs = std::chrono::duration<double>(now - start).count();
    const double rate = secs > 0 ? double(e.done) / secs : 0.0;
    const std::string unit = e.bytes ? std::string() : " " + std::string(e.unit);
    std::string line = fmt::format("{} {}{}", e.step, amount(e.done, e.bytes), unit);
    if (e.total > 0) {
      line = fmt::format("{} {} / {}{}  {:3.0f}%", e.step, amount(e.done, e.bytes), amount(e.total, e.bytes), unit,
                         100.0 * double(std::min(e.done, e.total)) / double(e.total));
    }
    if (rate > 0) {
      line += fmt::format("  {}{}/s", amount(uint64_t(rate), e.bytes), unit);
      if (e.total > e.done) line += "  " + duration(double(e.total - e.done) / rate) + " left";
    }
    std::string out = "\r" + line;
    if (line.size() < width) out += std::string(width - line.size(), ' ');
    width = line.size();
    std::fputs(out.c_str(), stderr);
    std::fflush(stderr);
  }

  void clear() {
    std::lock_guard lock(mu);
    if (width == 0) return;
    std::fputs(("\r" + std::string(width, ' ') + "\r").c_str(), stderr);
    std::fflush(stderr);
    width = 0;
  }
};

bool want_progress(bool forced, bool quiet, bool json) {
  if (forced) return true;
  return !quiet && !json && isatty(STDERR_FILENO);
}

ProgressLine::ProgressLine(bool on) {
  if (on) st_ = std::make_shared<State>();
}

ProgressLine::~ProgressLine() { clear(); }

ProgressFn ProgressLine::fn() const {
  if (!st_) return {};
  return [st = st_](const ProgressEvent& e) { st->draw(e); };
}

void ProgressLine::clear() {
  if (st_) st_->clear();
}

}  // namespace mc::cli
