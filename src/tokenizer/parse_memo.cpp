#include "tokenizer/parse_memo.h"

#include <mutex>
#include <string>

namespace mc::tok {

namespace {
struct Entry {
  std::shared_ptr<const void> owner;
  std::string_view bytes;  // compared whole: a hash collision must never hand back another vocabulary
  std::optional<Vocab> vocab;
};
std::mutex g_mu;
Entry g_entries[2];
}  // namespace

std::optional<Vocab> memo_take(ParserKind kind, std::string_view bytes) {
  std::lock_guard lock(g_mu);
  Entry& e = g_entries[int(kind)];
  if (!e.vocab || e.bytes != bytes) return std::nullopt;
  std::optional<Vocab> out = std::move(e.vocab);
  e = Entry{};
  return out;
}

void memo_keep(ParserKind kind, std::shared_ptr<const void> owner, std::string_view bytes, Vocab v) {
  std::lock_guard lock(g_mu);
  g_entries[int(kind)] = Entry{std::move(owner), bytes, std::move(v)};
}

}  // namespace mc::tok
