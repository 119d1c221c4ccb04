#include "services/delivery/payload/locale.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/payload/test_util.h"

namespace octo::payload {
namespace {

using ::testing::ElementsAre;
using testing::Json;

TEST(SelectLocaleTest, ExactTagCaseInsensitiveReturnsPublisherSpelling) {
  EXPECT_EQ(SelectLocale({"de-at"}, {"en", "de-AT", "de"}), "de-AT");
  EXPECT_EQ(SelectLocale({"pt_BR"}, {"pt-br", "pt"}), "pt-br");
}

TEST(SelectLocaleTest, PrimaryLanguageFallbackPrefersBareLanguage) {
  EXPECT_EQ(SelectLocale({"de-AT"}, {"de-DE", "de", "en"}), "de");
  EXPECT_EQ(SelectLocale({"de-AT"}, {"en", "de-DE", "de-CH"}), "de-DE");
  EXPECT_EQ(SelectLocale({"de"}, {"en-GB", "de-DE"}), "de-DE");
  EXPECT_EQ(SelectLocale({"zh-Hant-TW"}, {"zh-Hans-CN", "zh-Hant-TW"}), "zh-Hant-TW");
  EXPECT_EQ(SelectLocale({"zh-Hant-HK"}, {"zh-Hans-CN"}), "zh-Hans-CN");
}

TEST(SelectLocaleTest, PreferencesInOrderEachExactThenLanguage) {
  EXPECT_EQ(SelectLocale({"fr", "de-AT", "en-GB"}, {"en-GB", "de-DE"}), "de-DE");
  EXPECT_EQ(SelectLocale({"fr", "en-GB"}, {"en-US", "en-GB"}), "en-GB");
  EXPECT_EQ(SelectLocale({"", "es"}, {"es"}), "es");
}

TEST(SelectLocaleTest, NoMatchMeansDefault) {
  EXPECT_EQ(SelectLocale({"fr-FR"}, {"de", "en"}), std::nullopt);
  EXPECT_EQ(SelectLocale({}, {"de", "en"}), std::nullopt);
  EXPECT_EQ(SelectLocale({"de"}, {}), std::nullopt);
  // "e" is not the language of "en".
  EXPECT_EQ(SelectLocale({"e"}, {"en"}), std::nullopt);
}

TEST(ContactLocalesTest, ReadsBookingContactLocales) {
  EXPECT_THAT(ContactLocales(Json(R"({"contact":{"locales":["de-AT",1,"","en"]}})")), ElementsAre("de-AT", "en"));
  EXPECT_TRUE(ContactLocales(Json(R"({"contact":{"locales":[]}})")).empty());
  EXPECT_TRUE(ContactLocales(Json(R"({"contact":null})")).empty());
  EXPECT_TRUE(ContactLocales(Json(R"({"id":"availability"})")).empty());
  EXPECT_TRUE(ContactLocales(Json("[]")).empty());
  EXPECT_EQ(SelectContactLocale(Json(R"({"uuid":"b","contact":{"locales":["it-CH","de-CH"]}})"), {"de", "it"}), "it");
}

}  // namespace
}  // namespace octo::payload
