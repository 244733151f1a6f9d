// The hub client against a stand-in hub on 127.0.0.1 (tests/py/fake_hub.py), with the cache
// compared byte for byte with the layout huggingface_hub writes (tests/py/hf_cache_oracle.py,
// Python's hashlib and os.path.relpath), plus the hashes against hashlib.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "hub/cache.h"
#include "hub/fake_hub_test_util.h"
#include "hub/hash.h"
#include "hub/hub.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kToken = "hf_test_token_123";

TEST(HubHash, KnownVectors) {
  hub::Sha256 a;
  a.update("abc");
  EXPECT_EQ(a.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  hub::Sha256 e;
  EXPECT_EQ(e.hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hub::Sha1 s;
  s.update("abc");
  EXPECT_EQ(s.hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
  TempDir tmp;
  std::ofstream(tmp / "hello") << "hello\n";
  EXPECT_EQ(*hub::git_blob_sha1_file(tmp / "hello"), "ce013625030ba8dba906f756967f9e9ca394464a");  // git hash-object
}

TEST(HubHash, AgreesWithPythonHashlibAcrossBlockBoundaries) {
  TempDir tmp;
  std::mt19937 rng(7);
  for (size_t n : {0u, 1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 1000u, 70000u}) {
    std::string data(n, '\0');
    for (auto& c : data) c = char(rng());
    const fs::path p = tmp / ("f" + std::to_string(n));
    std::ofstream(p, std::ios::binary) << data;
    std::string out;
    ASSERT_EQ(run_command("/usr/bin/python3 -c \"import hashlib,sys; d=open(sys.argv[1],'rb').read(); "
                          "print(hashlib.sha256(d).hexdigest(), hashlib.sha1(b'blob %d\\0' % len(d) + d).hexdigest())\" " +
                              q(p),
                          &out),
              0)
        << out;
    EXPECT_EQ(out, *hub::sha256_file(p) + " " + *hub::git_blob_sha1_file(p) + "\n") << n << " bytes";
    // Fed in uneven pieces, the streaming hash is the same.
    hub::Sha256 h;
    for (size_t i = 0; i < n; i += 7) h.update(std::string_view(data).substr(i, 7));
    EXPECT_EQ(h.hex() + " ", out.substr(0, 65)) << n;
  }
}

TEST(HubId, ParsesHubIdsAndLeavesPathsAlone) {
  auto p = [](std::string_view s, bool exists = false) { return *hub::parse_hub_id(s, exists); };
  ASSERT_TRUE(p("tiny-org/tiny-llama"));
  EXPECT_EQ(p("tiny-org/tiny-llama")->repo, "tiny-org/tiny-llama");
  EXPECT_EQ(p("tiny-org/tiny-llama")->revision, "main");
  EXPECT_FALSE(p("tiny-org/tiny-llama", true)) << "an existing local path wins";
  EXPECT_FALSE(p("./model"));
  EXPECT_FALSE(p("/abs/model"));
  EXPECT_FALSE(p("a/b/c"));
  EXPECT_FALSE(p("model"));
  EXPECT_FALSE(p("../x"));
  auto full = p("hf:org/name/sub/model-q4.gguf@v1.0");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->repo, "org/name");
  EXPECT_EQ(full->file, "sub/model-q4.gguf");
  EXPECT_EQ(full->revision, "v1.0");
  EXPECT_EQ(full->text(), "hf:org/name/sub/model-q4.gguf@v1.0");
  EXPECT_EQ(p("hf:gpt2")->repo, "gpt2");
  EXPECT_EQ(p("hf:org/name", true)->repo, "org/name") << "hf: is a hub id even if such a folder exists";
  for (const char* bad : {"hf:", "hf:org/", "hf:org/name@", "hf:org/../x", "hf:org/name/../../etc", "hf:a--b/c"}) {
    auto r = hub::parse_hub_id(bad, false);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument) << bad;
  }
}

TEST(HubCache, RootFollowsHuggingfaceHubPrecedence) {
  EnvGuard env;
  env.set("HOME", "/h");
  for (auto k : {"HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH",
                 "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"})
    env.unset(k);
  EXPECT_EQ(hub::cache_root_from_env(), fs::path("/h/.cache/huggingface/hub"));
  env.set("XDG_CACHE_HOME", "/x");
  EXPECT_EQ(hub::cache_root_from_env(), fs::path("/x/huggingface/hub"));
  env.set("HF_HOME", "/hf");
  EXPECT_EQ(hub::cache_root_from_env(), fs::path("/hf/hub"));
  env.set("HF_HUB_CACHE", "/c");
  EXPECT_EQ(hub::cache_root_from_env(), fs::path("/c"));
  EXPECT_EQ(hub::repo_folder_name("org/name"), "models--org--name");

  TempDir tmp;
  env.set("HF_HOME", tmp.path().string());
  EXPECT_FALSE(hub::options_from_env().token);
  std::ofstream(tmp / "token") << "from_file\n";
  EXPECT_EQ(hub::options_from_env().token.value_or(""), "from_file");
  env.set("HUGGING_FACE_HUB_TOKEN", "legacy");
  EXPECT_EQ(hub::options_from_env().token.value_or(""), "legacy");
  env.set("HF_TOKEN", "primary");
  EXPECT_EQ(hub::options_from_env().token.value_or(""), "primary");
  EXPECT_FALSE(hub::options_from_env().offline);
  env.set("HF_HUB_OFFLINE", "yes");
  EXPECT_TRUE(hub::options_from_env().offline);
  env.set("HF_HUB_OFFLINE", "0");
  env.set("TRANSFORMERS_OFFLINE", "1");
  EXPECT_TRUE(hub::options_from_env().offline);
}

TEST(HubSelect, OneWeightsFormatAndNoOtherFrameworks) {
  auto sel = [](std::vector<std::string> s) { return *hub::select_files(s, "o/n"); };
  using V = std::vector<std::string>;
  EXPECT_EQ(sel({"config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack",
                 "tokenizer.json", "README.md", "onnx/model.onnx", "original/consolidated.00.pth", "training_args.bin",
                 "modeling_minicpm.py"}),
            (V{"README.md", "config.json", "model.safetensors", "modeling_minicpm.py", "tokenizer.json"}));
  EXPECT_EQ(sel({"config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
                 "pytorch_model.bin.index.json", "rust_model.ot"}),
            (V{"config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
               "pytorch_model.bin.index.json"}));
  EXPECT_EQ(sel({"README.md", "m.Q4_K_M.gguf"}), (V{"m.Q4_K_M.gguf"}));
  auto many = hub::select_files({"a.Q4_0.gguf", "a.Q8_0.gguf"}, "o/n");
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(many.error().hint.find("hf:o/n/a.Q4_0.gguf"), std::string::npos) << many.error().hint;
}

// A stand-in hub with a public repo, a private one, a corrupt one and an interrupted download.
class HubDownload : public ::testing::Test {
 protected:
  void SetUp() override {
    src = tmp / "src";
    fs::create_directories(src / "sub");
    std::ofstream(src / "config.json") << R"({"model_type": "llama"})" << "\n";
    std::ofstream(src / "tokenizer.json") << R"({"version": "1.0"})";
    std::ofstream(src / "sub" / "notes.txt") << "nested file\n";
    std::string weights(300000, '\0');
    std::mt19937 rng(1);
    for (auto& c : weights) c = char(rng());
    std::ofstream(src / "model.safetensors", std::ios::binary) << weights;
    const json files_repo = {{"dir", src.string()}, {"commit", kCommit}, {"refs", {"main", "v1"}}};
    json spec = {{"token", kToken}, {"repos", json::array()}};
    auto repo = [&](const std::string& id, json extra) {
      json r = files_repo;
      r["id"] = id;
      r.update(extra);
      spec["repos"].push_back(r);
    };
    repo("tiny-org/tiny", json::object());
    repo("tiny-org/private", {{"private", true}});
    repo("tiny-org/corrupt", {{"corrupt", {"model.safetensors"}}});
    repo("tiny-org/cut", {{"fail", {{"model.safetensors", {{"mode", "cut"}, {"times", 1}}}}}});
    repo("tiny-org/gitcorrupt", {{"corrupt", {"config.json"}}});
    repo("tiny-org/norange", {{"fail", {{"model.safetensors", {{"mode", "cut"}, {"times", 1}}}}}, {"ignore_range", true}});
    hub = std::make_unique<FakeHub>(spec, tmp / "hub");
    ASSERT_TRUE(hub->up()) << "the fake hub did not start";
    opt.endpoint = hub->endpoint();
    opt.cache_root = tmp / "cache";
  }
  hub::HubRef ref(const std::string& repo, const std::string& rev = "main") {
    hub::HubRef r;
    r.repo = repo;
    r.revision = rev;
    return r;
  }
  json oracle(const std::string& repo, const std::string& rev = "main") {
    std::string out;
    run_python("hf_cache_oracle.py check " + q(opt.cache_root) + " " + repo + " " + rev + " " + kCommit + " " + q(src) +
                   " config.json model.safetensors sub/notes.txt tokenizer.json",
               &out);
    auto j = last_json_line(out);
    EXPECT_TRUE(j) << out;
    return j ? *j : json::object();
  }
  std::vector<json> requests(const std::string& needle) {
    std::vector<json> out;
    for (auto& e : hub->log())
      if (e["path"].get<std::string>().find(needle) != std::string::npos) out.push_back(e);
    return out;
  }
  TempDir tmp;
  fs::path src;
  std::unique_ptr<FakeHub> hub;
  hub::HubOptions opt;
};

TEST_F(HubDownload, CacheIsWhatHuggingfaceHubWritesAndIsReusedWithoutDownloads) {
  auto r = hub::resolve(ref("tiny-org/tiny"), opt);
  ASSERT_TRUE(r) << r.error().render();
  EXPECT_EQ(r->commit, kCommit);
  EXPECT_EQ(r->path, opt.cache_root / "models--tiny-org--tiny" / "snapshots" / kCommit);
  EXPECT_EQ(r->downloaded.size(), 4u);
  EXPECT_EQ(slurp(r->path / "model.safetensors"), slurp(src / "model.safetensors"));
  const json o = oracle("tiny-org/tiny");
  EXPECT_TRUE(o.value("ok", false)) << o.dump();
  {  // The oracle is strict: a ref with a trailing newline is not what huggingface_hub writes.
    const fs::path ref_file = opt.cache_root / "models--tiny-org--tiny" / "refs" / "main";
    const std::string saved = slurp(ref_file);
    std::ofstream(ref_file, std::ios::app) << "\n";
    EXPECT_FALSE(oracle("tiny-org/tiny").value("ok", true));
    std::ofstream(ref_file, std::ios::trunc) << saved;
  }
  // The LFS file came from the other host, without the token; nothing went to the CDN twice.
  EXPECT_EQ(requests("/cdn/").size(), 1u);

  hub->clear_log();
  auto again = hub::resolve(ref("tiny-org/tiny"), opt);
  ASSERT_TRUE(again) << again.error().render();
  EXPECT_TRUE(again->downloaded.empty());
  EXPECT_EQ(hub->log().size(), 1u) << "only the revision API: every file was in the cache";

  hub->clear_log();
  opt.offline = true;
  auto off = hub::resolve(ref("tiny-org/tiny"), opt);
  ASSERT_TRUE(off) << off.error().render();
  EXPECT_TRUE(off->offline);
  EXPECT_EQ(off->path, r->path);
  EXPECT_EQ(off->files.size(), 4u);
  EXPECT_TRUE(hub->log().empty()) << "HF_HUB_OFFLINE: no request at all";
  auto missing = hub::resolve(ref("tiny-org/tiny", "v1"), opt);
  ASSERT_FALSE(missing) << "refs/v1 was never written";
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
  EXPECT_NE(missing.error().message.find("HF_HUB_OFFLINE"), std::string::npos);
}

TEST_F(HubDownload, ConcurrentResolversShareTheCache) {
  // Batch workers may fetch the same repository at once: per-blob locks, no clashing temp names.
  std::vector<Result<hub::Resolved>> results(4, Result<hub::Resolved>(Error{}));
  std::vector<std::thread> th;
  for (size_t i = 0; i < results.size(); ++i) th.emplace_back([&, i] { results[i] = hub::resolve(ref("tiny-org/tiny"), opt); });
  for (auto& t : th) t.join();
  for (const auto& r : results) ASSERT_TRUE(r) << r.error().render();
  EXPECT_TRUE(oracle("tiny-org/tiny").value("ok", false));
  EXPECT_EQ(requests("/cdn/").size(), 1u) << "the LFS file was downloaded once";
}

TEST_F(HubDownload, ASnapshotLeftByPythonToolsIsUsedAsIs) {
  std::string out;
  ASSERT_EQ(run_python("hf_cache_oracle.py populate " + q(opt.cache_root) + " tiny-org/tiny main " + kCommit + " " +
                           q(src) + " config.json model.safetensors sub/notes.txt tokenizer.json",
                       &out),
            0)
      << out;
  opt.offline = true;
  auto off = hub::resolve(ref("tiny-org/tiny"), opt);
  ASSERT_TRUE(off) << off.error().render();
  EXPECT_EQ(slurp(off->path / "sub" / "notes.txt"), "nested file\n");
  opt.offline = false;
  auto on = hub::resolve(ref("tiny-org/tiny"), opt);
  ASSERT_TRUE(on) << on.error().render();
  EXPECT_TRUE(on->downloaded.empty());
  EXPECT_TRUE(requests("/resolve/").empty() && requests("/cdn/").empty());
  EXPECT_TRUE(oracle("tiny-org/tiny").value("ok", false));
}

TEST_F(HubDownload, TokenGoesToTheHubOnlyAndPrivateReposNeedIt) {
  auto no = hub::resolve(ref("tiny-org/private"), opt);
  ASSERT_FALSE(no);
  EXPECT_EQ(no.error().code, ErrorCode::NotFound);
  EXPECT_EQ(exit_code_for(no.error().code), 4);
  EXPECT_NE(no.error().message.find("not found"), std::string::npos) << no.error().render();
  EXPECT_NE(no.error().hint.find("HF_TOKEN"), std::string::npos) << no.error().render();
  EXPECT_EQ(hub->log().back()["status"], 401);

  hub->clear_log();
  opt.token = kToken;
  auto yes = hub::resolve(ref("tiny-org/private"), opt);
  ASSERT_TRUE(yes) << yes.error().render();
  for (const auto& e : hub->log()) {
    if (e["path"].get<std::string>().rfind("/cdn/", 0) == 0) {
      EXPECT_TRUE(e["authorization"].is_null()) << "the token must not go to another host: " << e.dump();
      EXPECT_EQ(e["host"].get<std::string>().rfind("localhost:", 0), 0u) << e.dump();
    } else {
      EXPECT_EQ(e["authorization"], "Bearer " + kToken) << e.dump();
    }
  }
  auto unknown = hub::resolve(ref("tiny-org/nope"), opt);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::NotFound);
  EXPECT_NE(unknown.error().message.find("'tiny-org/nope' not found"), std::string::npos) << unknown.error().render();
  auto badrev = hub::resolve(ref("tiny-org/tiny", "no-such-branch"), opt);
  ASSERT_FALSE(badrev);
  EXPECT_EQ(badrev.error().code, ErrorCode::NotFound);
  EXPECT_NE(badrev.error().message.find("revision 'no-such-branch'"), std::string::npos) << badrev.error().render();
}

TEST_F(HubDownload, ACorruptDownloadLeavesNothingInTheCache) {
  for (const char* repo : {"tiny-org/corrupt", "tiny-org/gitcorrupt"}) {
    auto r = hub::resolve(ref(repo), opt);
    ASSERT_FALSE(r) << repo;
    EXPECT_EQ(r.error().code, ErrorCode::Corrupt) << r.error().render();
    EXPECT_NE(r.error().message.find("ETag"), std::string::npos) << r.error().render();
    const fs::path dir = opt.cache_root / ("models--" + std::string(repo).replace(8, 1, "--"));
    std::error_code ec;
    for (auto& e : fs::recursive_directory_iterator(dir / "blobs", ec)) {
      const std::string name = e.path().filename().string();
      // Only the good files may be there, each under its true hash.
      EXPECT_EQ(name.find(".incomplete"), std::string::npos) << name;
      bool good = false;
      for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "sub/notes.txt"})
        good = good || slurp(e.path()) == slurp(src / f);
      EXPECT_TRUE(good) << "a blob with bad bytes entered the cache: " << name;
    }
    EXPECT_FALSE(fs::exists(dir / "refs" / "main")) << "a failed download must not publish the ref";
  }
}

TEST_F(HubDownload, AnInterruptedDownloadResumesWithARange) {
  auto first = hub::resolve(ref("tiny-org/cut"), opt);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, ErrorCode::Io) << first.error().render();
  const auto cdn = requests("/cdn/");
  ASSERT_EQ(cdn.size(), 1u);
  // Half of the body arrived and stays for the next run.
  const fs::path blobs = opt.cache_root / "models--tiny-org--cut" / "blobs";
  uint64_t partial = 0;
  for (auto& e : fs::directory_iterator(blobs))
    if (e.path().extension() == ".incomplete") partial = fs::file_size(e.path());
  EXPECT_EQ(partial, 150000u);

  hub->clear_log();
  auto second = hub::resolve(ref("tiny-org/cut"), opt);
  ASSERT_TRUE(second) << second.error().render();
  const auto again = requests("/cdn/");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["range"], "bytes=150000-");
  EXPECT_EQ(again[0]["status"], 206);
  EXPECT_EQ(slurp(second->path / "model.safetensors"), slurp(src / "model.safetensors"));
  // The layout is the same as after a clean download (nothing left over).
  std::string out;
  run_python("hf_cache_oracle.py check " + q(opt.cache_root) + " tiny-org/cut main " + kCommit + " " + q(src) +
                 " config.json model.safetensors sub/notes.txt tokenizer.json",
             &out);
  EXPECT_NE(out.find("\"ok\": true"), std::string::npos) << out;
}

TEST_F(HubDownload, AServerThatIgnoresTheRangeRestartsTheDownloadCleanly) {
  ASSERT_FALSE(hub::resolve(ref("tiny-org/norange"), opt));
  hub->clear_log();
  std::vector<std::string> notes;
  opt.note = [&](const std::string& s) { notes.push_back(s); };
  auto r = hub::resolve(ref("tiny-org/norange"), opt);
  ASSERT_TRUE(r) << r.error().render();
  const auto cdn = requests("/cdn/");
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0]["range"], "bytes=150000-");
  EXPECT_EQ(cdn[0]["status"], 200) << "the whole file came back";
  EXPECT_EQ(slurp(r->path / "model.safetensors"), slurp(src / "model.safetensors")) << "not appended to the partial bytes";
  bool told = false;
  for (const auto& n : notes) told |= n.find("restarted") != std::string::npos;
  EXPECT_TRUE(told);
}

}  // namespace
}  // namespace mc::test
