// GrpcMetrics (metrics.h): grpc_server_* and grpc_client_* recorded by
// interceptors on series looked up once per method.
#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include <google/protobuf/descriptor.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/common/metrics.h"

namespace octo::metrics {

std::string_view GrpcCodeName(int code) {
  static constexpr std::string_view kNames[] = {
      "OK",           "Canceled",          "Unknown",  "InvalidArgument", "DeadlineExceeded", "NotFound",
      "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
      "OutOfRange",   "Unimplemented",     "Internal", "Unavailable",     "DataLoss",         "Unauthenticated"};
  if (code < 0 || code >= static_cast<int>(std::size(kNames))) return "Unknown";
  return kNames[code];
}

namespace {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Histogram;

constexpr int kCodes = 17;        // grpc::StatusCode 0..16
constexpr int kUnknownCode = 2;   // what GrpcCodeName calls any other code

// The grpc_type values the interceptors use; the cache is indexed by them.
constexpr std::string_view kTypes[] = {"unary", "client_stream", "server_stream", "bidi_stream",
                                       "unknown"};
constexpr int kTypeCount = static_cast<int>(std::size(kTypes));

int TypeIndex(std::string_view grpc_type) {
  for (int i = 0; i < kTypeCount; ++i) {
    if (kTypes[i] == grpc_type) return i;
  }
  return -1;
}

// The index of a grpc_code label value, -1 for a name not in the table.
int CodeIndex(std::string_view grpc_code) {
  for (int i = 0; i < kCodes; ++i) {
    if (GrpcCodeName(i) == grpc_code) return i;
  }
  return -1;
}

// "/pkg.Service/Method" -> {"pkg.Service", "Method"} when the method is in
// the linked descriptors, else nothing (labelled "unknown").
std::optional<std::pair<std::string, std::string>> KnownServiceAndMethod(std::string_view full_method) {
  if (full_method.size() < 4 || full_method.front() != '/') return std::nullopt;
  const std::size_t slash = full_method.find('/', 1);
  if (slash == std::string_view::npos || slash + 1 >= full_method.size()) return std::nullopt;
  std::string service(full_method.substr(1, slash - 1));
  std::string method(full_method.substr(slash + 1));
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(absl::StrCat(service, ".", method));
  if (descriptor == nullptr) return std::nullopt;
  return std::pair{std::move(service), std::move(method)};
}

// A look-up key without a copy (this absl's string_view is its own type).
absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The series in `slot`, made by `make` on first use. Two threads may both
// make it: Family::Add answers the same series for the same labels.
template <typename T, typename Make>
T& Lazy(std::atomic<T*>& slot, Make make) {
  T* p = slot.load(std::memory_order_acquire);
  if (p == nullptr) {
    p = &make();
    slot.store(p, std::memory_order_release);
  }
  return *p;
}

}  // namespace

class GrpcMetrics::MethodSeries {
 public:
  MethodSeries(prometheus::Family<Counter>& started, prometheus::Family<Counter>& handled,
               prometheus::Family<Histogram>& handling, std::string_view type, std::string service,
               std::string method)
      : started_family_(started),
        handled_family_(handled),
        handling_family_(handling),
        labels_{{"grpc_type", std::string(type)}, {"grpc_service", std::move(service)},
                {"grpc_method", std::move(method)}} {}

  void Started() const {
    Lazy(started_, [&]() -> Counter& { return started_family_.Add(labels_); }).Increment();
  }

  // `code` is a grpc::StatusCode (any other value is labelled "Unknown").
  void Handled(int code, double seconds) const {
    const int i = code >= 0 && code < kCodes ? code : kUnknownCode;
    Lazy(handled_[i], [&]() -> Counter& { return handled_family_.Add(WithCode(GrpcCodeName(i))); })
        .Increment();
    Observe(seconds);
  }

  // A grpc_code label value not in the table (only the public API can pass
  // one) is counted under that value, uncached.
  void Handled(std::string_view grpc_code, double seconds) const {
    if (const int i = CodeIndex(grpc_code); i >= 0) return Handled(i, seconds);
    handled_family_.Add(WithCode(grpc_code)).Increment();
    Observe(seconds);
  }

 private:
  prometheus::Labels WithCode(std::string_view code) const {
    prometheus::Labels labels = labels_;
    labels.emplace("grpc_code", std::string(code));
    return labels;
  }

  void Observe(double seconds) const {
    Lazy(handling_, [&]() -> Histogram& { return handling_family_.Add(labels_, LatencyBuckets()); })
        .Observe(seconds);
  }

  prometheus::Family<Counter>& started_family_;
  prometheus::Family<Counter>& handled_family_;
  prometheus::Family<Histogram>& handling_family_;
  const prometheus::Labels labels_;
  mutable std::atomic<Counter*> started_{nullptr};
  mutable std::atomic<Histogram*> handling_{nullptr};
  mutable std::array<std::atomic<Counter*>, kCodes> handled_{};
};

// Entries by side and type: known methods by their full name, and one
// "unknown" entry for every method not in the descriptors.
struct GrpcMetrics::Cache {
  mutable absl::Mutex mu;
  absl::flat_hash_map<std::string, std::shared_ptr<const MethodSeries>> known[2][kTypeCount]
      ABSL_GUARDED_BY(mu);
  std::shared_ptr<const MethodSeries> unknown[2][kTypeCount] ABSL_GUARDED_BY(mu);
  std::size_t size ABSL_GUARDED_BY(mu) = 0;
};

std::shared_ptr<const GrpcMetrics::MethodSeries> GrpcMetrics::Series(Side side, std::string_view grpc_type,
                                                                     std::string_view full_method) {
  const int s = static_cast<int>(side);
  const int t = TypeIndex(grpc_type);
  if (t < 0) return Resolve(side, grpc_type, full_method);
  {
    absl::ReaderMutexLock lock(&cache_->mu);
    const auto& known = cache_->known[s][t];
    if (auto it = known.find(Key(full_method)); it != known.end()) return it->second;
  }
  std::optional<std::pair<std::string, std::string>> names = KnownServiceAndMethod(full_method);
  if (!names.has_value()) {
    // Calls to methods no descriptor names share one series: read it shared,
    // so that a flood of them does not serialise on the exclusive lock.
    absl::ReaderMutexLock lock(&cache_->mu);
    if (const auto& unknown = cache_->unknown[s][t]; unknown != nullptr) return unknown;
  }
  absl::MutexLock lock(&cache_->mu);
  auto& known = cache_->known[s][t];
  std::shared_ptr<const MethodSeries>& unknown = cache_->unknown[s][t];
  if (names.has_value()) {
    if (auto it = known.find(Key(full_method)); it != known.end()) return it->second;  // resolved meanwhile
  } else if (unknown != nullptr) {
    return unknown;
  }
  auto series = std::make_shared<const MethodSeries>(
      *started_[s], *handled_[s], *handling_[s], grpc_type, names ? names->first : "unknown",
      names ? names->second : "unknown");
  // Past the bound a known method's series serves this call alone; the
  // one shared series of unknown methods (one per side and type) is always
  // kept, so that a flood of invented names keeps its reader-lock path.
  if (names.has_value() && cache_->size >= max_cached_) return series;
  ++cache_->size;
  if (names.has_value()) {
    known.emplace(std::string(full_method), series);
  } else {
    unknown = series;
  }
  return series;
}

std::shared_ptr<const GrpcMetrics::MethodSeries> GrpcMetrics::Resolve(Side side, std::string_view grpc_type,
                                                                      std::string_view full_method) {
  const int s = static_cast<int>(side);
  auto names = KnownServiceAndMethod(full_method).value_or(std::pair<std::string, std::string>{"unknown", "unknown"});
  return std::make_shared<const MethodSeries>(*started_[s], *handled_[s], *handling_[s], grpc_type,
                                              std::move(names.first), std::move(names.second));
}

std::size_t GrpcMetrics::CachedSeries() const {
  absl::ReaderMutexLock lock(&cache_->mu);
  return cache_->size;
}

void GrpcMetrics::Started(Side side, std::string_view grpc_type, std::string_view full_method) {
  Series(side, grpc_type, full_method)->Started();
}

void GrpcMetrics::Handled(Side side, std::string_view grpc_type, std::string_view full_method,
                          std::string_view grpc_code, double seconds) {
  Series(side, grpc_type, full_method)->Handled(grpc_code, seconds);
}

namespace {

template <typename Type>
std::string_view GrpcTypeName(Type type) {
  switch (type) {
    case Type::UNARY:
      return "unary";
    case Type::CLIENT_STREAMING:
      return "client_stream";
    case Type::SERVER_STREAMING:
      return "server_stream";
    case Type::BIDI_STREAMING:
      return "bidi_stream";
    default:
      return "unknown";
  }
}

using grpc::experimental::InterceptionHookPoints;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class ServerMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  ServerMetricsInterceptor(GrpcMetrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : series_(metrics->Series(GrpcMetrics::Side::kServer, GrpcTypeName(info->type()),
                                info->method() == nullptr ? "" : info->method())),
        start_(std::chrono::steady_clock::now()) {
    series_->Started();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      series_->Handled(methods->GetSendStatus().error_code(), SecondsSince(start_));
    }
    methods->Proceed();
  }

 private:
  const std::shared_ptr<const GrpcMetrics::MethodSeries> series_;
  const std::chrono::steady_clock::time_point start_;
};

class ClientMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  ClientMetricsInterceptor(GrpcMetrics* metrics, grpc::experimental::ClientRpcInfo* info)
      : series_(metrics->Series(GrpcMetrics::Side::kClient, GrpcTypeName(info->type()),
                                info->method() == nullptr ? "" : info->method())),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      series_->Started();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_STATUS)) {
      const grpc::Status* status = methods->GetRecvStatus();
      series_->Handled(status == nullptr ? grpc::StatusCode::UNKNOWN : status->error_code(),
                       SecondsSince(start_));
    }
    methods->Proceed();
  }

 private:
  const std::shared_ptr<const GrpcMetrics::MethodSeries> series_;
  const std::chrono::steady_clock::time_point start_;
};

class ServerFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ServerFactory(GrpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new ServerMetricsInterceptor(metrics_, info);
  }

 private:
  GrpcMetrics* const metrics_;
};

class ClientFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit ClientFactory(GrpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo* info) override {
    return new ClientMetricsInterceptor(metrics_, info);
  }

 private:
  GrpcMetrics* const metrics_;
};

}  // namespace

GrpcMetrics::GrpcMetrics(prometheus::Registry& registry, std::size_t max_cached)
    : started_{&BuildCounter()
                    .Name("grpc_server_started_total")
                    .Help("Total number of RPCs started on the server.")
                    .Register(registry),
               &BuildCounter()
                    .Name("grpc_client_started_total")
                    .Help("Total number of RPCs started on the client.")
                    .Register(registry)},
      handled_{&BuildCounter()
                    .Name("grpc_server_handled_total")
                    .Help("Total number of RPCs completed on the server, regardless of success or failure.")
                    .Register(registry),
               &BuildCounter()
                    .Name("grpc_client_handled_total")
                    .Help("Total number of RPCs completed by the client, regardless of success or failure.")
                    .Register(registry)},
      handling_{&BuildHistogram()
                     .Name("grpc_server_handling_seconds")
                     .Help("Histogram of response latency (seconds) of gRPC that had been application-level "
                           "handled by the server.")
                     .Register(registry),
                &BuildHistogram()
                     .Name("grpc_client_handling_seconds")
                     .Help("Histogram of response latency (seconds) of the gRPC until it is finished by the "
                           "application.")
                     .Register(registry)},
      max_cached_(max_cached),
      cache_(std::make_unique<Cache>()) {}

GrpcMetrics::~GrpcMetrics() = default;

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> GrpcMetrics::ServerInterceptors() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> v;
  v.push_back(std::make_unique<ServerFactory>(this));
  return v;
}

std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> GrpcMetrics::ClientInterceptors() {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> v;
  v.push_back(std::make_unique<ClientFactory>(this));
  return v;
}

}  // namespace octo::metrics
