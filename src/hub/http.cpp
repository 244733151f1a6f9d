#include "hub/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>

#include "core/dynamic_library.h"

namespace mc::hub {

namespace {

// libcurl is loaded at the first request, not when the program starts: linking it pulls in
// TLS, Kerberos and LDAP libraries whose loading and relocation took ~17 ms of every run (a
// program linking this project's libraries starts in 32 ms with libcurl, 14 ms without), and
// most runs never touch the network. Its entry points, resolved once:
struct Curl {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
};

// The library's soname since curl 7.16; Debian's libcurl4 package provides it.
constexpr const char* kCurlLibrary = "libcurl.so.4";

Result<const Curl*> curl() {
  struct Loaded {
    DynamicLibrary lib{kCurlLibrary};
    Curl api{};
  };
  // Loading and curl_global_init (not thread-safe) happen once per process.
  static const Loaded l = [] {
    Loaded x;
    x.lib.bind(x.api.global_init, "curl_global_init");
    x.lib.bind(x.api.easy_init, "curl_easy_init");
    x.lib.bind(x.api.easy_cleanup, "curl_easy_cleanup");
    x.lib.bind(x.api.easy_setopt, "curl_easy_setopt");
    x.lib.bind(x.api.easy_perform, "curl_easy_perform");
    x.lib.bind(x.api.easy_getinfo, "curl_easy_getinfo");
    x.lib.bind(x.api.easy_strerror, "curl_easy_strerror");
    x.lib.bind(x.api.slist_append, "curl_slist_append");
    x.lib.bind(x.api.slist_free_all, "curl_slist_free_all");
    if (x.lib.ok() && x.api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) x.lib.fail("curl_global_init failed");
    return x;
  }();
  if (!l.lib.ok())
    return make_error(ErrorCode::Unsupported, "cannot load {} for downloads: {}", kCurlLibrary, l.lib.error())
        .with_hint("install libcurl (Debian: apt-get install libcurl4), or give a local directory instead of a hub id");
  return &l.api;
}

struct Easy {
  const Curl& c;
  CURL* h = nullptr;
  curl_slist* hdrs = nullptr;
  explicit Easy(const Curl& api) : c(api), h(api.easy_init()) {}
  ~Easy() {
    if (hdrs) c.slist_free_all(hdrs);
    if (h) c.easy_cleanup(h);
  }
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<HttpResponse*>(user);
  std::string line(data, size * n);
  // A new status line (after a 100 Continue) starts a new header set.
  if (line.rfind("HTTP/", 0) == 0) {
    r->headers.clear();
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(value.begin());
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
    r->headers[name] = value;
  }
  return size * n;
}

struct BodySink {
  HttpResponse* r;
  size_t max;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<BodySink*>(user);
  const size_t len = size * n;
  if (s->r->body.size() + len > s->max) return 0;  // aborts the transfer: over the cap
  s->r->body.append(data, len);
  return len;
}

struct FileSink {
  const Curl* c;
  CURL* h;
  HttpResponse* r;
  int fd;
  uint64_t offset;  // requested start
  uint64_t pos = 0;
  uint64_t written = 0;
  bool decided = false, to_file = false;
  int err = 0;
  const std::function<void(uint64_t)>* on_bytes;
};

size_t on_file_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<FileSink*>(user);
  const size_t len = size * n;
  if (!s->decided) {
    long code = 0;
    s->c->easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
    s->decided = true;
    if (code == 206 && s->offset > 0) {
      s->to_file = true;
      s->pos = s->offset;
    } else if (code == 200) {
      s->to_file = true;
      s->pos = 0;
      if (::ftruncate(s->fd, 0) != 0) {
        s->err = errno;
        return 0;
      }
    }
  }
  if (!s->to_file) {
    if (s->r->body.size() < (64u << 10)) s->r->body.append(data, std::min(len, size_t(64u << 10)));
    return len;
  }
  size_t off = 0;
  while (off < len) {
    const ssize_t w = ::pwrite(s->fd, data + off, len - off, off_t(s->pos + off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      s->err = errno;
      return 0;
    }
    off += size_t(w);
  }
  s->pos += len;
  s->written += len;
  if (*s->on_bytes) (*s->on_bytes)(s->written);
  return len;
}

void common_options(Easy& e, const std::string& url, const HttpHeaders& headers, HttpResponse* r) {
  e.c.easy_setopt(e.h, CURLOPT_URL, url.c_str());
  e.c.easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 0L);
  e.c.easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
  e.c.easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT, 20L);
  // A stalled transfer (under 1 byte/s for 60 s) is an I/O error, not a hang.
  e.c.easy_setopt(e.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  e.c.easy_setopt(e.h, CURLOPT_LOW_SPEED_TIME, 60L);
  e.c.easy_setopt(e.h, CURLOPT_USERAGENT, "modelconvert/0.1 (libcurl)");
  e.c.easy_setopt(e.h, CURLOPT_HEADERFUNCTION, on_header);
  e.c.easy_setopt(e.h, CURLOPT_HEADERDATA, r);
  for (const auto& h : headers) e.hdrs = e.c.slist_append(e.hdrs, h.c_str());
  if (e.hdrs) e.c.easy_setopt(e.h, CURLOPT_HTTPHEADER, e.hdrs);
}

Error transfer_error(const Curl& c, CURLcode rc, const std::string& url, const char* errbuf) {
  return make_error(ErrorCode::Io, "cannot reach {}: {}", url, errbuf[0] ? errbuf : c.easy_strerror(rc))
      .with_hint("check the network (or HF_ENDPOINT); set HF_HUB_OFFLINE=1 to use only the local cache");
}

}  // namespace

Result<HttpResponse> http_request(const std::string& method, const std::string& url, const HttpHeaders& headers,
                                  size_t max_body) {
  Easy e(*MC_TRY(curl()));
  if (!e.h) return make_error(ErrorCode::Internal, "curl_easy_init failed");
  HttpResponse r;
  common_options(e, url, headers, &r);
  char errbuf[CURL_ERROR_SIZE] = {0};
  e.c.easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
  BodySink sink{&r, max_body};
  if (method == "HEAD") {
    e.c.easy_setopt(e.h, CURLOPT_NOBODY, 1L);
  } else {
    e.c.easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_body);
    e.c.easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
  }
  const CURLcode rc = e.c.easy_perform(e.h);
  if (rc == CURLE_WRITE_ERROR)
    return make_error(ErrorCode::LimitExceeded, "the answer from {} is over {} bytes", url, max_body);
  if (rc != CURLE_OK) return transfer_error(e.c, rc, url, errbuf);
  e.c.easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

Result<DownloadResult> http_download(const std::string& url, const HttpHeaders& headers, int fd, uint64_t offset,
                                     const std::function<void(uint64_t)>& on_bytes) {
  Easy e(*MC_TRY(curl()));
  if (!e.h) return make_error(ErrorCode::Internal, "curl_easy_init failed");
  DownloadResult res;
  HttpHeaders all = headers;
  all.push_back("Accept-Encoding: identity");
  if (offset > 0) all.push_back("Range: bytes=" + std::to_string(offset) + "-");
  common_options(e, url, all, &res.response);
  char errbuf[CURL_ERROR_SIZE] = {0};
  e.c.easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
  FileSink sink{&e.c, e.h, &res.response, fd, offset};
  sink.on_bytes = &on_bytes;
  e.c.easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_file_body);
  e.c.easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
  const CURLcode rc = e.c.easy_perform(e.h);
  e.c.easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &res.response.status);
  res.written = sink.written;
  res.start = sink.to_file ? (sink.pos - sink.written) : offset;
  if (sink.err) return make_error(ErrorCode::Io, "cannot write the download: {}", std::strerror(sink.err));
  if (rc != CURLE_OK) return transfer_error(e.c, rc, url, errbuf);
  return res;
}

std::string url_origin(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  const auto slash = url.find('/', scheme + 3);
  return slash == std::string::npos ? url : url.substr(0, slash);
}

std::string url_quote(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace mc::hub
