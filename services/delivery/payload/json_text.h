#pragma once
// Compact JSON text of a boost::json value, as the delivery body is written.
//
// Same as boost::json::serialize except for numbers of kind double, which
// Boost 1.81 writes in its own exponent form ("55.9533" -> "5.59533E1",
// "0.1" -> "1E-1") and, for an overflowed literal such as 1e400, as the
// non-JSON "Infinity". Here a double is the shortest text that reads back to
// the same value (std::to_chars), with ".0" added when that text would look
// like an integer (100.0 stays a double: "100.0"), and +-infinity is written
// "1e999" / "-1e999" (valid JSON that reads back as infinity).
// Strings are escaped as Boost does: \" \\ \b \f \n \r \t, other control
// characters as \u00XX, everything else (UTF-8, '/') as it is.
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace octo::payload {

std::string SerializeCompact(const boost::json::value& value);
void AppendCompact(const boost::json::value& value, std::string& out);
// A JSON string literal (quotes included), escaped as above.
void AppendJsonString(std::string_view text, std::string& out);

}  // namespace octo::payload
