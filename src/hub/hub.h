// Hugging Face hub ids as inputs: "org/name" (when no local path of that name exists) or
// "hf:org/name[/file][@revision]", resolved to a folder of the standard hub cache (hub/cache.h),
// downloading what is missing.
//
// HTTP (the hub's own API, as huggingface_hub uses it):
//   GET  {endpoint}/api/models/{repo}/revision/{rev}   -> {"sha": commit, "siblings": [{"rfilename"}]}
//   HEAD {endpoint}/{repo}/resolve/{commit}/{path}      -> ETag or X-Linked-Etag (sha256 for LFS,
//        git blob sha1 otherwise), Content-Length or X-Linked-Size, X-Repo-Commit; a redirect to
//        another host (the LFS CDN) is where the bytes are (no token is sent there)
//   GET  that location, with Range: bytes=N- to resume blobs/<etag>.incomplete
// Errors: 404, or 401 with X-Error-Code: RepoNotFound -> NotFound (exit 4; the repo may be
// private: a token is needed); RevisionNotFound / EntryNotFound -> NotFound; 5xx and transfer
// failures -> Io (transient). A download whose sha256 (or git sha1) differs from its ETag is
// deleted and reported as Corrupt: nothing enters the cache unverified.
// Environment: HF_TOKEN (then HUGGING_FACE_HUB_TOKEN, then the file $HF_TOKEN_PATH or
// $HF_HOME/token) as a bearer token; HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1): no network,
// refs/<rev> -> snapshots/<commit> only.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/progress.h"

namespace mc::hub {

namespace fs = std::filesystem;

struct HubRef {
  std::string repo;               // "org/name" (or a legacy single name: "gpt2")
  std::string revision = "main";  // branch, tag or commit sha
  std::string file;               // one file of the repo ("" = the files a conversion needs)
  std::string text() const;       // "hf:org/name[/file][@rev]"
};

// "hf:..." always parses (or fails with InvalidArgument); a bare "org/name" only when
// `local_path_exists` is false and it looks like a repo id. nullopt: not a hub id.
Result<std::optional<HubRef>> parse_hub_id(std::string_view text, bool local_path_exists);

struct HubOptions {
  std::string endpoint = "https://huggingface.co";
  fs::path cache_root;                  // cache_root_from_env() by default
  std::optional<std::string> token;
  bool offline = false;
  ProgressFn progress;                  // "downloading": bytes done / total
  std::function<void(const std::string&)> note;  // one-line notices (cache fallback, ...)
};
// cache root, token and offline flag from the environment; the endpoint is the caller's
// (configuration, HF_ENDPOINT).
HubOptions options_from_env();
// Whether an environment value means "on" (huggingface_hub: 1, ON, YES, TRUE, any case).
bool env_true(const char* name);

struct Resolved {
  fs::path path;                        // snapshots/<commit> (or the one file in it)
  std::string commit;
  std::vector<std::string> files;       // the repo files this input uses
  std::vector<std::string> downloaded;  // those fetched by this call
  uint64_t downloaded_bytes = 0;
  bool offline = false;                 // answered from the cache without any request
  bool fallback = false;                // the hub could not be reached; the cached snapshot was used
};
Result<Resolved> resolve(const HubRef& ref, const HubOptions& opt);

// Which of a repo's files a conversion needs: config, tokenizer, code and docs, and the
// weights in one format (safetensors when there are any, else PyTorch .bin); other frameworks'
// files (TF, Flax, ONNX, GGUF, CoreML, tflite, original/ checkpoints) are left out. A repo with
// no config.json and one GGUF file: that file. Fails when a repo holds only several GGUF files
// (pick one: hf:org/name/file.gguf).
Result<std::vector<std::string>> select_files(const std::vector<std::string>& siblings, const std::string& repo);

}  // namespace mc::hub
