#pragma once
// JSON text to a boost::json value, for the documents whose numbers the
// product keeps, compares or sends on (published resources and diffs, stored
// snapshots, the gateway's request bodies).
//
// Same as boost::json::parse except for one number: Boost 1.81 computes a
// decimal as mantissa * 10^exponent, and for a zero mantissa with an
// exponent above 308 ("0e400", "-0.0E+999") that is 0 * infinity, NaN. NaN is
// no JSON value (SerializeCompact writes it as null) and is unequal to
// itself (every diff would replace it), so here such a number reads as 0.0,
// the value the text means. (Its sign is lost: -0e400 reads as 0.0, as the
// NaN does not keep it.) A non-zero mantissa with a huge exponent stays
// +-infinity, which SerializeCompact writes as 1e999 and reads back the same.
#include <string_view>
#include <system_error>

#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

namespace octo::payload {

// `storage` is where the value's nodes are allocated (the default heap when
// empty); a caller that keeps the value only briefly may pass a
// boost::json::monotonic_resource, whose nodes are released all at once.
boost::json::value ParseJsonText(std::string_view text, boost::system::error_code& ec,
                                 boost::json::storage_ptr storage = {});
boost::json::value ParseJsonText(std::string_view text, std::error_code& ec,
                                 boost::json::storage_ptr storage = {});

// Replaces every NaN double in `value` by 0.0 (what ParseJsonText applies).
void ZeroNaNs(boost::json::value& value);

}  // namespace octo::payload
