// The TorchScript engine through the program (no torch needed): convert, inspect, validate,
// check, the bit-exact way back to safetensors, the option refusals, and malformed archives
// refused with the README's exit codes and nothing written.
#include <gtest/gtest.h>

#include "formats/torchscript/archive.h"
#include "formats/torchscript/test_models.h"
#include "testutil.h"

namespace mc::torchscript {
namespace {

using mc::test::mc_run;
using mc::test::q;

class TorchScriptCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(mc::test::modelconvert_binary())) << mc::test::modelconvert_binary();
    src_ = tmp_ / "src";
    ASSERT_TRUE(fixtures::write_hf_dir(fixtures::tiny_model(fixtures::tiny_config("mistral"), DType::F32, 2), src_).ok());
    ts_ = tmp_ / "m.pt";
    auto r = mc_run("convert " + q(src_) + " torchscript -o " + q(ts_) + " --quiet");
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  mc::test::TempDir tmp_;
  fs::path src_, ts_;
};

TEST_F(TorchScriptCli, InspectValidateCheckAndBackToSafetensors) {
  auto ins = mc_run("inspect " + q(ts_) + " --json");
  ASSERT_EQ(ins.rc, 0) << ins.out;
  const auto j = nlohmann::json::parse(ins.out);
  EXPECT_EQ(j["format"], "torchscript");
  EXPECT_EQ(j["model_type"], "mistral");
  EXPECT_EQ(j["tensors"], 21);
  EXPECT_EQ(j["details"]["written_by_modelconvert"], true);
  EXPECT_EQ(j["details"]["version"], 3);
  EXPECT_EQ(j["details"]["buffers"][0]["name"], "model.rotary_emb.inv_freq");

  auto v = mc_run("validate " + q(ts_));
  EXPECT_EQ(v.rc, 0) << v.out;
  auto chk = mc_run("check " + q(ts_) + " --compare " + q(src_) + " --ids 3,1,4,1,5,9,2,6 --max-new-tokens 2");
  EXPECT_EQ(chk.rc, 0) << chk.out;
  EXPECT_NE(chk.out.find("PASS"), std::string::npos) << chk.out;

  ASSERT_EQ(mc_run("convert " + q(src_) + " safetensors -o " + q(tmp_ / "direct") + " --quiet").rc, 0);
  auto back = mc_run("convert " + q(ts_) + " safetensors -o " + q(tmp_ / "back") + " --quiet");
  ASSERT_EQ(back.rc, 0) << back.out;
  EXPECT_EQ(mc::test::slurp(tmp_ / "back" / "model.safetensors"), mc::test::slurp(tmp_ / "direct" / "model.safetensors"));
  EXPECT_EQ(mc::test::slurp(tmp_ / "back" / "config.json"), mc::test::slurp(src_ / "config.json"));
}

TEST_F(TorchScriptCli, TorchScriptToTorchScriptWithADtype) {
  auto r = mc_run("convert " + q(ts_) + " torchscript --dtype bf16 -o " + q(tmp_ / "bf16.pt") + " --quiet");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto a = open_archive(tmp_ / "bf16.pt");
  ASSERT_TRUE(a.ok()) << a.error().render();
  for (const auto& e : a->parameters) EXPECT_EQ(e.dtype, DType::BF16) << e.name;
  auto chk = mc_run("check " + q(tmp_ / "bf16.pt") + " --compare " + q(ts_) + " --ids 3,1,4,1,5 --max-new-tokens 1");
  EXPECT_EQ(chk.rc, 0) << chk.out;
}

TEST_F(TorchScriptCli, OptionsTheWriterDoesNotTakeAreRefused) {
  auto r = mc_run("convert " + q(src_) + " torchscript --quant q8_0 -o " + q(tmp_ / "q.pt"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_FALSE(fs::exists(tmp_ / "q.pt"));
  auto l = mc_run("list formats --json");
  ASSERT_EQ(l.rc, 0);
  bool found = false;
  for (const auto& f : nlohmann::json::parse(l.out))
    if (f["id"] == "torchscript") found = f["read"] == true && f["write"] == true && f["validate"] == true;
  EXPECT_TRUE(found) << l.out;
}

TEST_F(TorchScriptCli, MalformedArchivesExitSixAndWriteNothing) {
  const std::string all = mc::test::slurp(ts_);
  ASSERT_TRUE(io::write_small_file(tmp_ / "cut.pt", std::string_view(all).substr(0, all.size() / 2)).ok());
  // a hostile data.pkl inside an otherwise valid archive
  std::vector<std::pair<std::string, std::string>> recs;
  {
    auto f = io::MappedFile::open(ts_.string());
    auto z = torch::ZipReader::open(*f);
    ASSERT_TRUE(z.ok());
    for (const auto& e : z->entries()) recs.emplace_back(e.name, *read_record(*z, e, uint64_t(1) << 30));
  }
  auto with = [&](const std::string& name, const std::function<void(decltype(recs)&)>& edit) {
    auto r = recs;
    edit(r);
    EXPECT_TRUE(fixtures::write_zip(tmp_ / name, r).ok());
  };
  with("evil.pt", [](auto& r) {
    for (auto& [n, b] : r)
      if (n.ends_with("/data.pkl")) b = std::string("\x80\x02" "cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.", 26);
  });
  with("noconst.pt", [](auto& r) { std::erase_if(r, [](const auto& x) { return x.first.ends_with("/constants.pkl"); }); });
  with("nover.pt", [](auto& r) { std::erase_if(r, [](const auto& x) { return x.first.ends_with("/version"); }); });
  for (const char* bad : {"cut.pt", "evil.pt", "noconst.pt", "nover.pt"}) {
    SCOPED_TRACE(bad);
    const fs::path out = tmp_ / (std::string(bad) + "-out");
    auto r = mc_run("convert " + q(tmp_ / bad) + " safetensors -o " + q(out) + " --from torchscript");
    EXPECT_EQ(r.rc, 6) << r.out;
    EXPECT_NE(r.out.find(bad), std::string::npos) << "the error names the file: " << r.out;
    EXPECT_FALSE(fs::exists(out));
    auto ins = mc_run("inspect " + q(tmp_ / bad) + " --from torchscript");
    EXPECT_EQ(ins.rc, 6) << ins.out;
  }
  auto r = mc_run("convert " + q(tmp_ / "evil.pt") + " safetensors -o " + q(tmp_ / "x") + " --from torchscript");
  EXPECT_NE(r.out.find("posix.system"), std::string::npos) << r.out;
  // and the torch.save reader refuses a TorchScript archive, pointing here
  auto pt = mc_run("convert " + q(ts_) + " safetensors -o " + q(tmp_ / "y") + " --from pytorch");
  EXPECT_EQ(pt.rc, 5) << pt.out;
  EXPECT_NE(pt.out.find("TorchScript"), std::string::npos) << pt.out;
}

}  // namespace
}  // namespace mc::torchscript
