// Fuzz target: the gateway's HTTP session without its socket. The input is
// what a client sends on one connection: it is read exactly as HttpSession
// reads it (http_session.cc: a fresh request_parser per request with the
// server's default header and body limits, http::read_header then
// http::read on one flat_buffer, pipelined requests one after the other),
// and each complete request goes through the router into ApiHandler, over
// the in-memory backend the gateway's unit tests use.
//
// The first input byte picks how many bytes each read returns (1..64), so
// requests are also parsed in fragments, as they arrive from a network.
//
// Checked for every response: the handler answers exactly once and at once
// (the backend completes inline); the status is a final one; the response
// carries Octo-Capabilities; an error (>= 400) is the OCTO error shape
// {"error", "errorMessage", ...}; a JSON content type has a JSON body; no
// 500 except from the extension routes the in-memory backend does not serve;
// and Beast can serialize it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

#include "gateway/api_handler.h"
#include "gateway/http_server.h"
#include "gateway/octo_error.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "tests/gateway/fake_subscription_backend.h"

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
using octo::gateway::ApiHandler;
using octo::gateway::HandlerResult;
using octo::gateway::HttpRequest;
using octo::gateway::HttpServer;

// The key the seed corpus sends ("Authorization: Bearer fuzz-key").
constexpr const char* kApiKey = "fuzz-key";
constexpr const char* kConnection = "c0000000-0000-4000-8000-00000000000a";
// Requests answered per input: bounds the time one input can take.
constexpr int kMaxRequests = 16;

[[noreturn]] void Fail(const char* what, const HandlerResult& result) {
  std::ostringstream out;
  out << result.response.base();
  fprintf(stderr, "invariant broken: %s\nroute: %s\nresponse head:\n%s\nbody: %.2000s\n", what,
          result.route.c_str(), out.str().c_str(), result.response.body().c_str());
  abort();
}

bool IsJsonContentType(const HandlerResult& result) {
  const auto it = result.response.find(http::field::content_type);
  return it != result.response.end() && it->value().starts_with("application/json");
}

void CheckResponse(const HandlerResult& result) {
  const unsigned status = result.response.result_int();
  if (status < 200 || status > 599) Fail("status outside 200..599", result);
  if (result.response.find("Octo-Capabilities") == result.response.end()) {
    Fail("no Octo-Capabilities header", result);
  }
  if (status == 500 && result.route.find("/ext/") == std::string::npos) {
    Fail("500 for a route the backend serves", result);
  }
  if (IsJsonContentType(result)) {
    boost::system::error_code ec;
    const json::value body = json::parse(result.response.body(), ec);
    if (ec) Fail("a JSON content type with a body that is not JSON", result);
    if (status >= 400) {
      const json::object* object = body.if_object();
      if (object == nullptr || !object->contains("error") || !object->at("error").is_string() ||
          !object->contains("errorMessage") || !object->at("errorMessage").is_string()) {
        Fail("an error body without the OCTO error shape", result);
      }
    }
  } else if (status >= 400) {
    Fail("an error without a JSON body", result);
  }
  std::ostringstream serialized;
  serialized << result.response;
  if (serialized.str().empty()) Fail("the response does not serialize", result);
}

// One request through the handler, as HttpSession::Dispatch hands it over.
bool Answer(ApiHandler& handler, HttpRequest request) {
  int calls = 0;
  std::optional<HandlerResult> result;
  handler.Handle(std::move(request), [&](HandlerResult r) {
    ++calls;
    result = std::move(r);
  });
  if (calls != 1 || !result.has_value()) {
    fprintf(stderr, "invariant broken: the handler answered %d times\n", calls);
    abort();
  }
  CheckResponse(*result);
  return result->response.keep_alive();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::size_t read_size = 1 + data[0] % 64;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  octo::gateway::testing::FakeSubscriptionBackend backend;
  backend.AddKey(kApiKey, kConnection);
  ApiHandler::Options options;
  ApiHandler handler(options, &backend);
  const HttpServer::Options limits;

  boost::asio::io_context ioc;
  beast::test::stream client(ioc, bytes);
  client.read_size(read_size);
  client.close_remote();  // end of stream after the input
  beast::flat_buffer buffer;

  for (int i = 0; i < kMaxRequests; ++i) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(limits.max_header_bytes);
    parser.body_limit(limits.max_body_bytes);
    beast::error_code ec;
    http::read_header(client, buffer, parser, ec);
    if (!ec && !parser.is_done()) http::read(client, buffer, parser, ec);
    if (ec) {
      // The session answers a body or header over the limit and malformed
      // HTTP with an OCTO error echoing what capabilities it can, then
      // closes; anything else (end of stream) closes silently.
      if (ec == http::error::body_limit || ec == http::error::header_limit ||
          ec.category() == http::make_error_code(http::error::bad_target).category()) {
        HandlerResult answer{octo::gateway::ErrorResponse(
                                 octo::gateway::BadRequest("Malformed HTTP request: " + ec.message()),
                                 11),
                             "unmatched"};
        answer.response.set("Octo-Capabilities",
                            octo::gateway::CapabilitiesEcho(parser.get().base()));
        CheckResponse(answer);
      }
      break;
    }
    if (!Answer(handler, parser.release())) break;
  }
  return 0;
}
