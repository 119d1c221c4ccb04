#pragma once
// The `diff` of a delivery: JSON-Patch-like ops between the previous and the
// current state of a resource.
//
// Each op is an object whose keys come in the order of Ventrata's OpenAPI
// `Diff` schema (op, path, was, value), the one its BookingUpdate example
// and our MISSION use:
//   {"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}
//   {"op":"add","path":"/notes","value":"..."}          (no "was")
//   {"op":"remove","path":"/bookings/0","was":{...}}     (no "value")
// `path` is a JSON pointer (RFC 6901: "~" -> "~0", "/" -> "~1").
#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

namespace octo::payload {

// Objects are compared key by key (keys of `after` in their order, then the
// keys of `before` that are gone, in theirs); key order alone is not a
// change. Arrays are compared by index: the common prefix recursively, then
// extra elements of `after` are added at their index in ascending order, or
// extra elements of `before` removed from the highest index down (so the ops
// apply in sequence). Any other difference (a scalar, or a change of type,
// 1 vs 1.0 included) is a replace of the whole value. Equal values: [].
boost::json::array ComputeDiff(const boost::json::value& before, const boost::json::value& after);

}  // namespace octo::payload
