// Fuzz target: the gateway's router and the parsers of what a request
// carries besides its bytes on the wire: query strings (the deliveries
// cursor and filters), JSON bodies of every route, Content-Type,
// Authorization and Octo-Capabilities, and --base_path.
//
// Input: byte 0 picks the parser (and, for the router, the method), the
// rest is the text it reads.
//
// Checked: every refusal is INVALID_ARGUMENT (FAILED_PRECONDITION for a body
// without a JSON content type), never another code; every accepted request
// survives the trip to the subscription service (its protobuf serializes and
// parses back: string fields hold valid UTF-8); the router ignores the query
// string, names "unmatched" for unknown paths, gives an Allow list with 405
// and an id that is one non-empty path segment of the target.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/http/verb.hpp>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/status/statusor.h"
#include "gateway/dashboard_json.h"
#include "gateway/json_body.h"
#include "gateway/notifications_json.h"
#include "gateway/operations_json.h"
#include "gateway/request_parsing.h"
#include "gateway/router.h"
#include "tests/fuzz/json_compare.h"

namespace {

namespace http = boost::beast::http;
using namespace octo::gateway;

[[noreturn]] void Fail(const char* what, std::string_view input) {
  fprintf(stderr, "invariant broken: %s\ninput: %.*s\n", what, static_cast<int>(input.size()),
          input.data());
  abort();
}

void CheckRefusal(const absl::Status& status, std::string_view input) {
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) {
    Fail("a refusal that is not INVALID_ARGUMENT", input);
  }
}

// The wire bytes of `message` with map entries in key order. Plain
// serialization writes a map (the headers) in its hash order, which may differ
// between a message and its parsed copy: comparing those bytes failed at
// random on bodies with two headers.
std::string DeterministicWire(const google::protobuf::MessageLite& message) {
  std::string wire;
  {
    google::protobuf::io::StringOutputStream stream(&wire);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return wire;
}

// An accepted request must reach the service: its protobuf serializes and
// parses back to the same message.
template <typename Message>
void CheckParsed(const absl::StatusOr<Message>& parsed, std::string_view input) {
  CheckRefusal(parsed.status(), input);
  if (!parsed.ok()) return;
  std::string wire;
  if (!parsed->SerializeToString(&wire)) Fail("the request does not serialize", input);
  Message back;
  if (!back.ParseFromString(wire)) Fail("the request does not parse back (invalid UTF-8?)", input);
  if (DeterministicWire(back) != DeterministicWire(*parsed)) {
    Fail("the request changes on a round trip", input);
  }
}

void CheckRouter(http::verb method, std::string_view target) {
  static const Router* const router = new Router("/octo");
  const RouteMatch m = router->Match(method, target);
  if (m.route == Route::kNotFound && m.route_template != "unmatched") {
    Fail("an unknown path with a route template", target);
  }
  if (m.route == Route::kMethodNotAllowed && m.allow.empty()) Fail("405 without Allow", target);
  const std::string_view path = target.substr(0, target.find('?'));
  for (const std::string* id : {&m.webhook_id, &m.delivery_id}) {
    if (id->empty()) continue;
    if (id->find('/') != std::string::npos || path.find(*id) == std::string_view::npos) {
      Fail("an id that is not one segment of the path", target);
    }
  }
  if (m.route == Route::kGetWebhook && m.webhook_id.empty()) Fail("no id for GET :id", target);
  if (target.find('?') == std::string_view::npos) {
    const RouteMatch q = router->Match(method, std::string(target) + "?cursor=x&limit=1");
    if (q.route != m.route || q.route_template != m.route_template ||
        q.webhook_id != m.webhook_id || q.delivery_id != m.delivery_id) {
      Fail("the query string changes the route", target);
    }
  }
}

constexpr http::verb kMethods[] = {http::verb::get,    http::verb::post,    http::verb::patch,
                                   http::verb::delete_, http::verb::put,    http::verb::head,
                                   http::verb::options, http::verb::unknown};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (selector % 20) {
    case 0:
    case 1:
      CheckRouter(kMethods[(selector / 20) % std::size(kMethods)], text);
      break;
    case 2: {
      const absl::StatusOr<std::string> base = NormalizeBasePath(text);
      CheckRefusal(base.status(), text);
      if (base.ok()) {
        const absl::StatusOr<std::string> again = NormalizeBasePath(*base);
        if (!again.ok() || *again != *base) Fail("NormalizeBasePath is not idempotent", text);
        const Router router(*base);
        if (router.Match(http::verb::get, *base + "/webhooks").route != Route::kListWebhooks) {
          Fail("the collection route is not under the base path", text);
        }
      }
      break;
    }
    case 3:
      CheckParsed(ParseListDeliveriesQuery(text), text);
      break;
    case 4:
      CheckRefusal(CheckNoQuery(text), text);
      break;
    case 5:
      CheckParsed(ParseCreateWebhookBody(text), text);
      break;
    case 6:
      CheckParsed(ParseUpdateWebhookBody(text), text);
      break;
    case 7:
      CheckParsed(ParseCreateSubscriptionBody(text), text);
      break;
    case 8:
      CheckParsed(ParseUpdateSubscriptionBody(text), text);
      break;
    case 9:
      CheckParsed(ParseReplayBody(text), text);
      break;
    case 10:
      CheckParsed(ParseRotateBody(text), text);
      break;
    case 11: {
      const absl::Status s = CheckEmptyBody(text, selector & 0x80);
      if (!s.ok() && s.code() != absl::StatusCode::kInvalidArgument &&
          s.code() != absl::StatusCode::kFailedPrecondition) {
        Fail("CheckEmptyBody: an unexpected code", text);
      }
      break;
    }
    case 12:
      CheckParsed(ParseLoginBody(text), text);
      break;
    case 13:
      CheckParsed(ParseWebhookFilter(text), text);
      break;
    case 14:
      CheckParsed(ParseDashboardCreateBody(text), text);
      break;
    case 15: {
      const absl::StatusOr<boost::json::value> v = ParseJsonBody(text);
      CheckRefusal(v.status(), text);
      if (v.ok()) {
        if (FindRepeatedMember(text).found) Fail("accepted a repeated member", text);
        if (octo::fuzz::HasNaN(*v)) Fail("ParseJsonBody gave a NaN", text);
        const absl::StatusOr<boost::json::value> again = ParseJsonBody(JsonText(*v));
        if (!again.ok() || !octo::fuzz::SameReadBack(*again, *v)) Fail("JsonText does not read back", text);
      }
      break;
    }
    case 16:
      (void)IsJsonContentType(text);
      break;
    case 17: {
      const absl::StatusOr<std::string> key = ParseBearerKey(text);
      CheckRefusal(key.status(), text);
      if (key.ok() && (key->empty() || key->size() > 512 || text.find(*key) == std::string_view::npos)) {
        Fail("a bearer key that is empty, too long or not from the header", text);
      }
      break;
    }
    default: {
      boost::beast::http::fields fields;
      fields.set("Octo-Capabilities", std::string(text));
      const absl::StatusOr<std::vector<std::string>> caps = RequestCapabilities(fields);
      CheckRefusal(caps.status(), text);
      if (caps.ok()) {
        boost::beast::http::fields echo;
        echo.set("Octo-Capabilities", JoinCapabilities(*caps));
        const absl::StatusOr<std::vector<std::string>> back = RequestCapabilities(echo);
        if (!back.ok() || *back != *caps) Fail("the capabilities echo does not read back", text);
      }
      break;
    }
  }
  return 0;
}
