// A small HTTP client on libcurl for the hub: one request at a time per object, redirects
// handed back to the caller (the hub's resolve/ answers a redirect to a CDN whose host must not
// get the token), response headers with lower-case names, and downloads streamed into a file
// at an offset (resume with Range).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"

namespace mc::hub {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; last value wins
  std::string body;                            // small bodies only (JSON, error text)
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

using HttpHeaders = std::vector<std::string>;  // "Name: value"

// Transfer failures (no connection, timeout, reset) come back as ErrorCode::Io with the URL;
// every HTTP status comes back as a response.
Result<HttpResponse> http_request(const std::string& method, const std::string& url, const HttpHeaders& headers,
                                  size_t max_body = size_t(16) << 20);

// GET `url` into the open file `fd` starting at `offset` (sends Range: bytes=offset- when
// offset > 0). On 200 the file is written from 0 (the server ignored the range); on 206 from
// `offset`; other statuses write nothing and return the response with its body. `on_bytes` gets
// the bytes written by this call so far.
struct DownloadResult {
  HttpResponse response;
  uint64_t written = 0;      // bytes written by this call
  uint64_t start = 0;        // where they started in the file
};
Result<DownloadResult> http_download(const std::string& url, const HttpHeaders& headers, int fd, uint64_t offset,
                                     const std::function<void(uint64_t)>& on_bytes);

// "https://host:port/a/b" -> "https://host:port" (scheme and authority).
std::string url_origin(const std::string& url);
// Percent-encodes a path segment (keeps unreserved characters; with keep_slash '/' too).
std::string url_quote(std::string_view s, bool keep_slash);

}  // namespace mc::hub
