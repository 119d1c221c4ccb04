#pragma once
// JSON in and out of the gateway.
//
// ParseJsonBody is the one way the gateway reads a request body: strict
// RFC 8259 (Boost.JSON, valid UTF-8) and, unlike Boost.JSON's default where
// the last of a repeated member wins, an object that names a member twice is
// refused (INVALID_ARGUMENT -> BAD_REQUEST): two values for one field are
// ambiguous, and which one a client meant cannot be guessed.
//
// JsonText is the one way it writes a response body: compact, doubles as
// people write them ("2.5", never Boost 1.81's "2.5E0"; see
// services/delivery/payload/json_text.h).
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "absl/status/statusor.h"

namespace octo::gateway {

absl::StatusOr<boost::json::value> ParseJsonBody(std::string_view body);

// The first member name (decoded) given twice within one object of `text`,
// which must be valid JSON; found=false when there is none.
struct RepeatedMember {
  bool found = false;
  std::string name;
};
RepeatedMember FindRepeatedMember(std::string_view text);

std::string JsonText(const boost::json::value& value);

}  // namespace octo::gateway
