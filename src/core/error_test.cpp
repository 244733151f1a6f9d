// Error::render, the with_* helpers and the error code table.
#include <gtest/gtest.h>

#include "core/error.h"

namespace mc {
namespace {

TEST(Error, RenderWithEveryField) {
  Error e = make_error(ErrorCode::Truncated, "needs {} bytes, {} left", 64, 10);
  e.path = "model.safetensors";
  e.offset = 4096;
  e.tensor = "model.norm.weight";
  e.hint = "re-download the file";
  EXPECT_EQ(e.render(),
            "model.safetensors @ byte 4096: tensor 'model.norm.weight': needs 64 bytes, 10 left; "
            "re-download the file");
}

TEST(Error, RenderLeavesOutEmptyFields) {
  EXPECT_EQ(make_error(ErrorCode::Internal, "boom").render(), "boom");
  Error e = make_error(ErrorCode::NotFound, "missing");
  e.path = "a.gguf";
  EXPECT_EQ(e.render(), "a.gguf: missing");
  e.tensor = "w";
  EXPECT_EQ(e.render(), "a.gguf: tensor 'w': missing");
  Error t = make_error(ErrorCode::Corrupt, "bad");
  t.tensor = "x";
  t.hint = "try again";
  EXPECT_EQ(t.render(), "tensor 'x': bad; try again");
}

TEST(Error, WithHelpersDoNotOverwrite) {
  Error e = make_error(ErrorCode::Io, "read failed").with_path("first").with_path("second");
  EXPECT_EQ(e.path, "first");
  Error f = std::move(e).with_tensor("t1").with_tensor("t2").with_hint("h1").with_hint("h2");
  EXPECT_EQ(f.tensor, "t1");
  EXPECT_EQ(f.hint, "h1");
  EXPECT_EQ(f.path, "first");
  EXPECT_EQ(f.code, ErrorCode::Io);
}

TEST(Error, CodeNamesAndExitCodes) {
  EXPECT_EQ(error_code_name(ErrorCode::Corrupt), "corrupt");
  EXPECT_EQ(error_code_name(ErrorCode::LimitExceeded), "limit_exceeded");
  EXPECT_EQ(exit_code_for(ErrorCode::InvalidArgument), 2);
  EXPECT_EQ(exit_code_for(ErrorCode::Internal), 70);
  for (size_t i = 0; i < size_t(ErrorCode::Count); ++i) {
    EXPECT_FALSE(error_code_name(ErrorCode(i)).empty());
    EXPECT_NE(exit_code_for(ErrorCode(i)), 0);
  }
}

Result<int> half(int x) {
  if (x % 2) return make_error(ErrorCode::InvalidArgument, "{} is odd", x);
  return x / 2;
}
Result<int> quarter(int x) {
  const int h = MC_TRY(half(x));
  return MC_TRY(half(h));
}

TEST(Error, TryPropagates) {
  EXPECT_EQ(*quarter(12), 3);
  auto r = quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "3 is odd");
}

}  // namespace
}  // namespace mc
