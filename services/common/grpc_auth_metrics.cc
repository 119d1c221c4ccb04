#include <string>

#include <prometheus/counter.h>

#include "services/common/metrics.h"

namespace octo::metrics {

GrpcAuthMetrics::GrpcAuthMetrics(prometheus::Registry& registry)
    : refused_(prometheus::BuildCounter()
                   .Name("octo_grpc_calls_refused_total")
                   .Help("gRPC calls refused by the internal authentication before any handler, "
                         "by status code and caller identity (\"unknown\": no token or nobody's).")
                   .Register(registry)) {
  // The unauthenticated series exists from the start, at 0, so that rate()
  // and the alert see the first refusal as an increase.
  refused_.Add({{"code", "UNAUTHENTICATED"}, {"caller", "unknown"}});
}

void GrpcAuthMetrics::Refused(std::string_view code, std::string_view caller) {
  refused_.Add({{"code", std::string(code)}, {"caller", std::string(caller)}}).Increment();
}

}  // namespace octo::metrics
