// Resolving a hub id: the revision API for the commit and file list, HEAD per missing file for
// its ETag and size, then verified downloads into the cache (layout in hub/cache.h, HTTP facts
// in hub/hub.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "hub/cache.h"
#include "hub/hash.h"
#include "hub/http.h"
#include "hub/hub.h"

namespace mc::hub {

namespace {

bool repo_chars_ok(std::string_view s) {
  if (s.empty() || s.size() > 96 || s.front() == '.' || s.front() == '-' || s.find("..") != std::string_view::npos ||
      s.find("--") != std::string_view::npos)
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string strip_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool ends_with(std::string_view s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// The error for a hub answer that is not a success.
Error http_error(const HttpResponse& r, const HubRef& ref, const std::string& what, bool have_token) {
  const std::string code = r.header("x-error-code");
  const std::string msg = r.header("x-error-message");
  if (code == "RepoNotFound" || (r.status == 404 && code.empty() && what == "repository") ||
      (r.status == 401 && code.empty())) {
    Error e = make_error(ErrorCode::NotFound, "repository '{}' not found on the hub (HTTP {})", ref.repo, r.status);
    e.hint = have_token ? "check the name; your token (HF_TOKEN) may not give access to it"
                        : "check the name; a private or gated repository needs a token: set HF_TOKEN";
    return e;
  }
  if (code == "RevisionNotFound")
    return make_error(ErrorCode::NotFound, "revision '{}' not found in '{}'", ref.revision, ref.repo)
        .with_hint("check the branch, tag or commit after '@'");
  if (code == "EntryNotFound" || r.status == 404)
    return make_error(ErrorCode::NotFound, "{} not found in '{}' at '{}' (HTTP {})", what, ref.repo, ref.revision, r.status);
  if (code == "GatedRepo" || r.status == 401 || r.status == 403)
    return make_error(ErrorCode::NotFound, "access to '{}' refused (HTTP {}{}{})", ref.repo, r.status,
                      msg.empty() ? "" : ": ", msg)
        .with_hint("accept the repository's conditions on the hub and set HF_TOKEN");
  return make_error(ErrorCode::Io, "the hub answered HTTP {} for {} of '{}'{}{}", r.status, what, ref.repo,
                    msg.empty() ? "" : ": ", msg)
      .with_hint("try again later");
}

struct FileMeta {
  std::string path, etag, location;
  uint64_t size = 0;
  bool has_size = false;
};

class Client {
 public:
  Client(const HubRef& ref, const HubOptions& opt) : ref_(ref), opt_(opt), cache_(opt.cache_root, ref.repo) {
    while (!opt_.endpoint.empty() && opt_.endpoint.back() == '/') opt_.endpoint.pop_back();
    origin_ = url_origin(opt_.endpoint);
  }

  Result<Resolved> run();

 private:
  HttpHeaders auth_for(const std::string& url) const {
    HttpHeaders h;
    if (opt_.token && !opt_.token->empty() && url_origin(url) == origin_) h.push_back("Authorization: Bearer " + *opt_.token);
    return h;
  }
  Result<Resolved> from_cache(bool fallback, const Error* why);
  Result<FileMeta> head(const std::string& commit, const std::string& path);
  Status fetch(const FileMeta& m, const std::string& commit);
  Status verify(const fs::path& file, const FileMeta& m);
  void note(const std::string& s) const {
    if (opt_.note) opt_.note(s);
  }

  HubRef ref_;
  HubOptions opt_;
  RepoCache cache_;
  std::string origin_;
  std::optional<Progress> progress_;
};

Result<Resolved> Client::from_cache(bool fallback, const Error* why) {
  Resolved r;
  r.offline = !fallback;
  r.fallback = fallback;
  const auto commit = cache_.read_ref(ref_.revision);
  auto missing = [&]() {
    Error e = fallback && why ? *why
                              : make_error(ErrorCode::NotFound, "{} is not in the hub cache and HF_HUB_OFFLINE is set",
                                           ref_.text());
    if (!fallback) {
      e.path = cache_.dir().string();
      e.hint = "download it once with the network on (unset HF_HUB_OFFLINE), or point HF_HUB_CACHE/HF_HOME at a cache that has it";
    }
    return e;
  };
  if (!commit) return missing();
  r.commit = *commit;
  const fs::path snap = cache_.snapshot_dir(*commit);
  std::error_code ec;
  if (!ref_.file.empty()) {
    if (!cache_.has_file(*commit, ref_.file)) return missing();
    r.path = snap / ref_.file;
    r.files = {ref_.file};
  } else {
    if (!fs::is_directory(snap, ec)) return missing();
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (fs::is_regular_file(it->path(), ec)) r.files.push_back(it->path().lexically_relative(snap).string());
    std::sort(r.files.begin(), r.files.end());
    if (r.files.empty()) return missing();
    r.path = snap;
    // A GGUF-only repository resolves to its one file, as when it was downloaded.
    if (!fs::exists(snap / "config.json", ec) && r.files.size() == 1 && ends_with(r.files[0], ".gguf"))
      r.path = snap / r.files[0];
  }
  if (fallback && why) note(fmt::format("{}; using the cached snapshot {}", why->message, commit->substr(0, 12)));
  return r;
}

Result<FileMeta> Client::head(const std::string& commit, const std::string& path) {
  std::string url = opt_.endpoint + "/" + ref_.repo + "/resolve/" + commit + "/" + url_quote(path, true);
  for (int hop = 0; hop < 6; ++hop) {
    HttpHeaders h = auth_for(url);
    h.push_back("Accept-Encoding: identity");
    auto r = MC_TRY(http_request("HEAD", url, h));
    const bool redirect = r.status >= 300 && r.status < 400;
    const std::string loc = r.header("location");
    if (redirect && !loc.empty() && loc.front() == '/') {  // relative: a renamed repo; follow it
      url = origin_ + loc;
      continue;
    }
    if (!redirect && (r.status < 200 || r.status >= 300))
      return http_error(r, ref_, "file '" + path + "'", opt_.token.has_value());
    // An LFS file answers with a redirect to the CDN: X-Linked-* describe the file, Location is
    // where its bytes are.
    FileMeta m;
    m.path = path;
    m.etag = strip_etag(r.header("x-linked-etag").empty() ? r.header("etag") : r.header("x-linked-etag"));
    m.location = redirect && !loc.empty() ? loc : url;
    const std::string size = r.header("x-linked-size").empty() ? r.header("content-length") : r.header("x-linked-size");
    if (!size.empty()) {
      m.size = std::strtoull(size.c_str(), nullptr, 10);
      m.has_size = true;
    }
    if (m.etag.empty()) return make_error(ErrorCode::Io, "the hub gave no ETag for '{}' of '{}'", path, ref_.repo);
    return m;
  }
  return make_error(ErrorCode::Io, "too many redirects for '{}' of '{}'", path, ref_.repo);
}

Status Client::verify(const fs::path& file, const FileMeta& m) {
  std::string got, kind;
  if (m.etag.size() == 64 && is_hex(m.etag)) {
    got = MC_TRY(sha256_file(file));
    kind = "sha256";
  } else if (m.etag.size() == 40 && is_hex(m.etag)) {
    got = MC_TRY(git_blob_sha1_file(file));
    kind = "git blob sha1";
  } else {
    return {};  // an ETag that is not a content hash: the size check is all there is
  }
  if (got != m.etag)
    return make_error(ErrorCode::Corrupt, "download of '{}' from '{}' has {} {}, the hub's ETag says {}; it was deleted",
                      m.path, ref_.repo, kind, got, m.etag)
        .with_hint("run again to download it anew; if it keeps failing the server or a proxy alters the file");
  return {};
}

Status Client::fetch(const FileMeta& m, const std::string& commit) {
  if (m.etag.find('/') != std::string::npos || m.etag.find("..") != std::string::npos || m.etag.empty())
    return make_error(ErrorCode::Corrupt, "the hub gave an unusable ETag '{}' for '{}'", m.etag, m.path);
  std::error_code ec;
  const fs::path blob = cache_.blob_path(m.etag);
  auto lock = MC_TRY(FileLock::acquire(cache_.lock_path(m.etag)));
  if (!fs::exists(blob, ec)) {
    fs::create_directories(blob.parent_path(), ec);
    const fs::path part = blob.string() + ".incomplete";
    const int fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return make_error(ErrorCode::Io, "cannot create: {}", std::strerror(errno)).with_path(part.string());
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    ::fstat(fd, &st);
    uint64_t have = uint64_t(st.st_size);
    if (m.has_size && have > m.size) {
      if (::ftruncate(fd, 0) != 0) return make_error(ErrorCode::Io, "cannot truncate").with_path(part.string());
      have = 0;
    }
    if (have > 0) note(fmt::format("resuming {} at byte {}", m.path, have));
    if (progress_ && have > 0) progress_->add_done(have);
    if (!(m.has_size && have == m.size && have > 0)) {
      std::string url = m.location;
      bool restarted = false;
      for (int hop = 0;; ++hop) {
        if (hop > 6) return make_error(ErrorCode::Io, "too many redirects downloading '{}'", m.path);
        uint64_t seen = 0;
        auto on_bytes = [&](uint64_t n) {
          if (progress_ && n > seen) progress_->add_done(n - seen);
          seen = n;
        };
        auto d = MC_TRY(http_download(url, auth_for(url), fd, have, on_bytes));
        const auto& r = d.response;
        if (r.status >= 300 && r.status < 400 && !r.header("location").empty()) {
          const std::string loc = r.header("location");
          url = loc.front() == '/' ? url_origin(url) + loc : loc;
          continue;
        }
        if (r.status == 416 && !restarted) {  // our partial file is not a prefix the server knows
          if (::ftruncate(fd, 0) != 0) return make_error(ErrorCode::Io, "cannot truncate").with_path(part.string());
          have = 0;
          restarted = true;
          continue;
        }
        if (r.status != 200 && r.status != 206) return http_error(r, ref_, "file '" + m.path + "'", opt_.token.has_value());
        if (r.status == 200 && have > 0) note(fmt::format("the server ignored the range: {} restarted", m.path));
        break;
      }
    }
    ::fstat(fd, &st);
    if (m.has_size && uint64_t(st.st_size) != m.size)
      return make_error(ErrorCode::Io, "download of '{}' ended at byte {} of {}", m.path, uint64_t(st.st_size), m.size)
          .with_hint("run again: the download resumes where it stopped");
    if (auto v = verify(part, m); !v) {
      ::unlink(part.c_str());
      return v;
    }
    if (::rename(part.c_str(), blob.c_str()) != 0)
      return make_error(ErrorCode::Io, "cannot move the download into the cache: {}", std::strerror(errno))
          .with_path(blob.string());
  }
  return cache_.link(commit, m.path, m.etag);
}

Result<Resolved> Client::run() {
  if (opt_.offline) return from_cache(false, nullptr);
  const std::string api = opt_.endpoint + "/api/models/" + ref_.repo + "/revision/" + url_quote(ref_.revision, false);
  auto rr = http_request("GET", api, auth_for(api));
  if (!rr) {
    const Error why = rr.error();
    if (cache_.read_ref(ref_.revision)) return from_cache(true, &why);
    return why;
  }
  if (rr->status != 200) {
    Error e = http_error(*rr, ref_, "repository", opt_.token.has_value());
    if (e.code == ErrorCode::Io && cache_.read_ref(ref_.revision)) return from_cache(true, &e);
    return e;
  }
  const auto j = nlohmann::json::parse(rr->body, nullptr, false);
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string())
    return make_error(ErrorCode::Corrupt, "the hub's answer for '{}' has no commit sha", ref_.repo).with_path(api);
  Resolved res;
  res.commit = j["sha"].get<std::string>();
  if (!is_commit_sha(res.commit))
    return make_error(ErrorCode::Corrupt, "the hub's commit '{}' for '{}' is not a sha", res.commit, ref_.repo);
  std::vector<std::string> siblings;
  if (j.contains("siblings") && j["siblings"].is_array())
    for (const auto& s : j["siblings"])
      if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string()) siblings.push_back(s["rfilename"].get<std::string>());
  for (const auto& s : siblings)
    if (s.empty() || s.front() == '/' || s.find("..") != std::string::npos)
      return make_error(ErrorCode::Corrupt, "the hub lists an unsafe file name '{}' in '{}'", s, ref_.repo);
  if (!ref_.file.empty()) {
    if (std::find(siblings.begin(), siblings.end(), ref_.file) == siblings.end())
      return make_error(ErrorCode::NotFound, "no file '{}' in '{}' at '{}'", ref_.file, ref_.repo, ref_.revision)
          .with_hint("check the file name (it is case-sensitive)");
    res.files = {ref_.file};
  } else {
    res.files = MC_TRY(select_files(siblings, ref_.repo));
  }
  // Metadata of every missing file first, so the progress line knows the total.
  std::vector<FileMeta> todo;
  for (const auto& f : res.files)
    if (!cache_.has_file(res.commit, f)) todo.push_back(MC_TRY(head(res.commit, f)));
  if (!todo.empty() && opt_.progress) {
    progress_.emplace("downloading", true, opt_.progress);
    uint64_t total = 0;
    for (const auto& m : todo)
      if (!fs::exists(cache_.blob_path(m.etag))) total += m.size;
    progress_->add_total(total);
  }
  for (const auto& m : todo) {
    const bool had = fs::exists(cache_.blob_path(m.etag));
    MC_CHECK(fetch(m, res.commit));
    if (!had) {
      res.downloaded.push_back(m.path);
      res.downloaded_bytes += m.size;
    }
  }
  MC_CHECK(cache_.write_ref(ref_.revision, res.commit));
  const fs::path snap = cache_.snapshot_dir(res.commit);
  res.path = ref_.file.empty() ? snap : snap / ref_.file;
  if (ref_.file.empty() && res.files.size() == 1 && ends_with(res.files[0], ".gguf")) res.path = snap / res.files[0];
  return res;
}

}  // namespace

std::string HubRef::text() const {
  std::string s = "hf:" + repo;
  if (!file.empty()) s += "/" + file;
  if (revision != "main") s += "@" + revision;
  return s;
}

Result<std::optional<HubRef>> parse_hub_id(std::string_view text, bool local_path_exists) {
  const bool prefixed = text.rfind("hf:", 0) == 0;
  if (!prefixed) {
    if (local_path_exists) return std::optional<HubRef>();
    const auto slash = text.find('/');
    if (slash == std::string_view::npos || text.find('/', slash + 1) != std::string_view::npos)
      return std::optional<HubRef>();
    if (!repo_chars_ok(text.substr(0, slash)) || !repo_chars_ok(text.substr(slash + 1))) return std::optional<HubRef>();
    HubRef r;
    r.repo = std::string(text);
    return std::optional<HubRef>(r);
  }
  std::string_view rest = text.substr(3);
  HubRef r;
  const auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    r.revision = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (r.revision.empty())
      return make_error(ErrorCode::InvalidArgument, "'{}': empty revision after '@'", text).with_hint("write hf:org/name@main");
  }
  auto bad = [&] {
    return make_error(ErrorCode::InvalidArgument, "'{}' is not a hub id", text)
        .with_hint("write hf:org/name, hf:org/name@revision or hf:org/name/file.gguf");
  };
  const auto s1 = rest.find('/');
  if (s1 == std::string_view::npos) {
    if (!repo_chars_ok(rest)) return bad();
    r.repo = std::string(rest);
    return std::optional<HubRef>(r);
  }
  const auto s2 = rest.find('/', s1 + 1);
  const std::string_view org = rest.substr(0, s1);
  const std::string_view name = rest.substr(s1 + 1, s2 == std::string_view::npos ? std::string_view::npos : s2 - s1 - 1);
  if (!repo_chars_ok(org) || !repo_chars_ok(name)) return bad();
  r.repo = std::string(org) + "/" + std::string(name);
  if (s2 != std::string_view::npos) {
    r.file = std::string(rest.substr(s2 + 1));
    if (r.file.empty() || r.file.front() == '/' || r.file.find("..") != std::string::npos) return bad();
  }
  for (char c : r.revision)
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ' || c == '\\') return bad();
  if (r.revision.find("..") != std::string::npos || r.revision.front() == '/') return bad();
  return std::optional<HubRef>(r);
}

bool env_true(const char* name) {
  std::string v = env(name);
  for (auto& c : v) c = char(std::toupper(static_cast<unsigned char>(c)));
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

HubOptions options_from_env() {
  HubOptions o;
  o.cache_root = cache_root_from_env();
  o.offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
  std::string tok = env("HF_TOKEN");
  if (tok.empty()) tok = env("HUGGING_FACE_HUB_TOKEN");
  if (tok.empty()) {
    const std::string p = env("HF_TOKEN_PATH");
    std::ifstream f(p.empty() ? hf_home_from_env() / "token" : fs::path(p));
    if (f) std::getline(f, tok);
  }
  while (!tok.empty() && (tok.back() == '\r' || tok.back() == ' ')) tok.pop_back();
  if (!tok.empty()) o.token = tok;
  return o;
}

Result<Resolved> resolve(const HubRef& ref, const HubOptions& opt) {
  Client c(ref, opt);
  return c.run();
}

}  // namespace mc::hub
