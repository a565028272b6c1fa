#include "common/multipart.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace trl {
namespace {

std::vector<MultipartPart> PartsOf(std::string_view body, std::string_view boundary = "XyZ") {
  auto parsed = ParseMultipart(body, boundary);
  if (auto* why = std::get_if<std::string>(&parsed)) {
    ADD_FAILURE() << "unexpected error: " << *why;
    return {};
  }
  return std::get<std::vector<MultipartPart>>(parsed);
}

std::string MultipartError(std::string_view body, std::string_view boundary = "XyZ") {
  auto parsed = ParseMultipart(body, boundary);
  if (!std::holds_alternative<std::string>(parsed)) {
    ADD_FAILURE() << "expected an error for " << body;
    return {};
  }
  return std::get<std::string>(parsed);
}

TEST(MockMultipartTest, Boundary) {
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=XyZ"), "XyZ");
  EXPECT_EQ(MultipartBoundary("Multipart/Form-Data;charset=utf-8; boundary=\"a;b c\""), "a;b c");
  EXPECT_EQ(MultipartBoundary("multipart/form-data"), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary="), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=\"open"), std::nullopt);
  EXPECT_EQ(MultipartBoundary("application/json; boundary=x"), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'a')),
            std::nullopt);
}

TEST(MockMultipartTest, ReadsPartsByName) {
  const std::string body =
      "preamble\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"a;b.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\n"
      "RIFF\r\n--Xy\r\n"
      "--XyZ\r\ncontent-disposition: form-data; name=model\r\n\r\nmock-model\r\n"
      "--XyZ--\r\nepilogue";
  std::vector<MultipartPart> parts = PartsOf(body);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "file");
  EXPECT_EQ(parts[0].filename, "a;b.wav");
  EXPECT_EQ(parts[0].content_type, "audio/wav");
  EXPECT_EQ(parts[0].data, "RIFF\r\n--Xy");
  ASSERT_NE(FindPart(parts, "model"), nullptr);
  EXPECT_EQ(FindPart(parts, "model")->data, "mock-model");
  EXPECT_EQ(FindPart(parts, "language"), nullptr);
  EXPECT_EQ(PartsOf("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--XyZ--")[0].data,
            "");
}

TEST(MockMultipartTest, RefusesHostileBodies) {
  const std::string part = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n";
  EXPECT_EQ(MultipartError("no delimiter at all"), "no multipart boundary in the body");
  EXPECT_EQ(MultipartError(part), "truncated multipart part");  // no closing delimiter
  EXPECT_EQ(MultipartError("--XyZ\r\nContent-Disposition: form-data; name=a\r\n"),
            "truncated multipart part");
  EXPECT_EQ(MultipartError("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nno end"),
            "truncated multipart part");
  EXPECT_EQ(MultipartError(part + part + "--XyZ--"), "duplicate multipart field 'a'");
  EXPECT_EQ(MultipartError("--XyZ\r\nContent-Type: text/plain\r\n\r\n1\r\n--XyZ--"),
            "multipart part without a form-data name");
  EXPECT_EQ(MultipartError("--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\n1\r\n--XyZ--"),
            "multipart part without a form-data name");
  EXPECT_EQ(MultipartError("--XyZ\r\nno colon here\r\n\r\n1\r\n--XyZ--"),
            "multipart part without a form-data name");
  EXPECT_EQ(MultipartError("--XyZjunk"), "malformed multipart delimiter line");
  std::string many;
  for (size_t i = 0; i <= kMultipartMaxParts; ++i) {
    many += "--XyZ\r\nContent-Disposition: form-data; name=f" + std::to_string(i) + "\r\n\r\n\r\n";
  }
  EXPECT_EQ(MultipartError(many + "--XyZ--"), "too many multipart parts");
}

}  // namespace
}  // namespace trl
