#include "tokenizer/parse_memo.h"

#include <mutex>
#include <string>

namespace mc::tok {

namespace {
struct Entry {
  std::string bytes;  // compared whole: a hash collision must never hand back another vocabulary
  Vocab vocab;
  bool set = false;
};
std::mutex g_mu;
Entry g_entries[2];
}  // namespace

std::optional<Vocab> memo_find(ParserKind kind, std::string_view bytes) {
  std::lock_guard lock(g_mu);
  const Entry& e = g_entries[int(kind)];
  if (!e.set || e.bytes != bytes) return std::nullopt;
  return e.vocab;
}

void memo_store(ParserKind kind, std::string_view bytes, const Vocab& v) {
  std::lock_guard lock(g_mu);
  Entry& e = g_entries[int(kind)];
  e.bytes.assign(bytes);
  e.vocab = v;
  e.set = true;
}

}  // namespace mc::tok
