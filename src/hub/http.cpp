#include "hub/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace mc::hub {

namespace {

// curl_global_init is not thread-safe: once per process.
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Easy {
  CURL* h = nullptr;
  curl_slist* hdrs = nullptr;
  Easy() : h(curl_easy_init()) {}
  ~Easy() {
    if (hdrs) curl_slist_free_all(hdrs);
    if (h) curl_easy_cleanup(h);
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
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
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
  curl_easy_setopt(e.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT, 20L);
  // A stalled transfer (under 1 byte/s for 60 s) is an I/O error, not a hang.
  curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(e.h, CURLOPT_USERAGENT, "modelconvert/0.1 (libcurl)");
  curl_easy_setopt(e.h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e.h, CURLOPT_HEADERDATA, r);
  for (const auto& h : headers) e.hdrs = curl_slist_append(e.hdrs, h.c_str());
  if (e.hdrs) curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.hdrs);
}

Error transfer_error(CURLcode rc, const std::string& url, const char* errbuf) {
  return make_error(ErrorCode::Io, "cannot reach {}: {}", url, errbuf[0] ? errbuf : curl_easy_strerror(rc))
      .with_hint("check the network (or HF_ENDPOINT); set HF_HUB_OFFLINE=1 to use only the local cache");
}

}  // namespace

Result<HttpResponse> http_request(const std::string& method, const std::string& url, const HttpHeaders& headers,
                                  size_t max_body) {
  global_init();
  Easy e;
  if (!e.h) return make_error(ErrorCode::Internal, "curl_easy_init failed");
  HttpResponse r;
  common_options(e, url, headers, &r);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
  BodySink sink{&r, max_body};
  if (method == "HEAD") {
    curl_easy_setopt(e.h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
  }
  const CURLcode rc = curl_easy_perform(e.h);
  if (rc == CURLE_WRITE_ERROR)
    return make_error(ErrorCode::LimitExceeded, "the answer from {} is over {} bytes", url, max_body);
  if (rc != CURLE_OK) return transfer_error(rc, url, errbuf);
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

Result<DownloadResult> http_download(const std::string& url, const HttpHeaders& headers, int fd, uint64_t offset,
                                     const std::function<void(uint64_t)>& on_bytes) {
  global_init();
  Easy e;
  if (!e.h) return make_error(ErrorCode::Internal, "curl_easy_init failed");
  DownloadResult res;
  HttpHeaders all = headers;
  all.push_back("Accept-Encoding: identity");
  if (offset > 0) all.push_back("Range: bytes=" + std::to_string(offset) + "-");
  common_options(e, url, all, &res.response);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
  FileSink sink{e.h, &res.response, fd, offset};
  sink.on_bytes = &on_bytes;
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_file_body);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
  const CURLcode rc = curl_easy_perform(e.h);
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &res.response.status);
  res.written = sink.written;
  res.start = sink.to_file ? (sink.pos - sink.written) : offset;
  if (sink.err) return make_error(ErrorCode::Io, "cannot write the download: {}", std::strerror(sink.err));
  if (rc != CURLE_OK) return transfer_error(rc, url, errbuf);
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
