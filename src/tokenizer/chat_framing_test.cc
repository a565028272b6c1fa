#include "tokenizer/chat_framing.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

std::string Render(
    std::string_view family,
    std::vector<std::pair<std::string_view, std::vector<std::string_view>>> messages) {
  std::vector<ChatTurn> turns;
  for (const auto& [role, texts] : messages) turns.push_back({role, texts});
  return BuiltInChatFraming(family)->Render(turns);
}

TEST(ChatFramingTest, Llama3) {
  EXPECT_EQ(Render("llama3", {{"system", {" Be brief. "}}, {"user", {"Hi", "there\n"}}}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi\nthere<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// The first turn's content is the system block and the user's text, stripped as one: the
// user text's leading space stays.
TEST(ChatFramingTest, Llama2PutsTheSystemMessageInTheFirstTurn) {
  EXPECT_EQ(
      Render("llama2", {{"system", {"Be brief."}},
                        {"user", {" Hi "}},
                        {"assistant", {"Hello"}},
                        {"user", {"Bye"}}}),
      "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi [/INST] Hello </s><s>[INST] Bye [/INST]");
  EXPECT_EQ(Render("llama2", {{"user", {"Hi"}}}), "<s>[INST] Hi [/INST]");
}

TEST(ChatFramingTest, ChatMLKeepsContentsAsTheyAre) {
  EXPECT_EQ(Render("chatml", {{"user", {" Hi "}}}),
            "<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(BuiltInChatFraming("mistral"));
}

TEST(ChatFramingTest, StripsWhatPythonStrips) {
  EXPECT_EQ(PythonStrip(" \t\n\x1c"
                        "a b\xC2\x85\xE3\x80\x80"),
            "a b");
  EXPECT_EQ(PythonStrip("\xEF\xBB\xBF"
                        "a"),
            "\xEF\xBB\xBF"
            "a");  // U+FEFF is no space to Python
  EXPECT_EQ(PythonStrip("   "), "");
}

}  // namespace
}  // namespace trl
