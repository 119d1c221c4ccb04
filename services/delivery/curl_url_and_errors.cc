// The libcurl transport's pure helpers: error classes of libcurl result
// codes, whether URLs parse and their schemes (curl_transport.h).
#include <curl/curl.h>

#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/strings.h"
#include "services/delivery/curl_transport.h"

namespace octo::delivery {

ErrorClass ClassifyCurlCode(int curl_code) {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_OK:
      return ErrorClass::kNone;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return ErrorClass::kDns;
    case CURLE_COULDNT_CONNECT:
      return ErrorClass::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return ErrorClass::kTimeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
      return ErrorClass::kTls;
    // The server (or the path to it) broke the exchange after connecting.
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP_RETURNED_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_RANGE_ERROR:
      return ErrorClass::kHttp;
    default:
      return ErrorClass::kInternal;
  }
}

bool ParsesAsAbsoluteUrl(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return false;
  char* host = nullptr;
  const bool ok = curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
                  curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
  curl_free(host);
  curl_url_cleanup(u);
  return ok;
}

std::string UrlScheme(std::string_view url) {
  const auto colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0 || !absl::ascii_isalpha(static_cast<unsigned char>(url[0]))) {
    return "";
  }
  for (char c : url.substr(0, colon)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return "";
  }
  return absl::AsciiStrToLower(AbslView(url.substr(0, colon)));
}

}  // namespace octo::delivery
