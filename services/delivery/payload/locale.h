#pragma once
// useContactLanguage: which localized variant of a resource the guest gets.
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

namespace octo::payload {

// The guest's `contact.locales` of a booking or order, in preference order
// (non-string and empty entries skipped); empty when there are none.
std::vector<std::string> ContactLocales(const boost::json::value& resource);

// The variant to send, from the locales the publisher supplied (`available`),
// for a guest who prefers `preferred` (BCP-47 tags, best first). Preferences
// are taken in order, like RFC 4647 lookup; for each one:
//   1. a variant with exactly that tag (case-insensitive; "_" read as "-");
//   2. else a variant of the same primary language: the bare language tag
//      ("de" for "de-AT") if supplied, else the first such variant in
//      `available` order ("de-DE").
// So ["de-AT","en-GB"] with variants {"en-GB","de-DE"} gives "de-DE": the
// guest's first language wins over an exact match on a later one.
// Returns the tag as the publisher spelled it (for Content-Language), or
// nullopt: send the default rendering.
std::optional<std::string> SelectLocale(const std::vector<std::string>& preferred,
                                        const std::vector<std::string>& available);

// SelectLocale(ContactLocales(resource), available).
std::optional<std::string> SelectContactLocale(const boost::json::value& resource,
                                               const std::vector<std::string>& available);

}  // namespace octo::payload
