#include "tests/perf/bench_workload.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tests/perf/sink_server.h"

namespace octo::perf {
namespace {

namespace v1 = ::octo::webhooks::v1;
using std::chrono::steady_clock;

absl::Status RpcError(const char* rpc, const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(rpc, ": ", s.error_message()));
}

std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

// The parts of a booking around its varying fields: a realistic OCTO booking
// of about 1.6 KB with pricing (octo/pricing) on the booking and unit items.
constexpr char kBookingMiddle[] =
    R"(","testMode":false,"resellerReference":null,"supplierReference":"BENCH01","status":"CONFIRMED",)"
    R"("utcCreatedAt":"2026-11-25T10:34:22Z","utcUpdatedAt":"2026-11-25T10:34:22Z","utcExpiresAt":null,)"
    R"("utcRedeemedAt":null,"utcConfirmedAt":"2026-11-25T10:34:22Z",)"
    R"("productId":"6b903d44-dc24-4ca4-ae71-6bde6c4f4854","optionId":"DEFAULT","cancellable":true,)"
    R"("cancellation":null,"freesale":false,"availabilityId":"2026-12-01T09:00:00Z",)"
    R"("availability":{"id":"2026-12-01T09:00:00Z","localDateTimeStart":"2026-12-01T09:00:00+00:00",)"
    R"("localDateTimeEnd":"2026-12-01T10:00:00+00:00","allDay":false,"openingHours":[]},)"
    R"("contact":{"fullName":"John Doe","firstName":"John","lastName":"Doe",)"
    R"("emailAddress":"johndoe@example.com","phoneNumber":"+44 20 7946 0000","locales":["en-GB","en"],)"
    R"("postalCode":"W1H 7EJ","country":"GB","notes":null},"notes":"Benchmark booking",)"
    R"("deliveryMethods":["TICKET","VOUCHER"],"voucher":null,"unitItems":[)"
    R"({"uuid":"3b1bc2ee-3155-4738-9471-f49842a07327","resellerReference":null,"supplierReference":"U1",)"
    R"("unitId":"adult","status":"CONFIRMED","utcRedeemedAt":null,"contact":{"fullName":"John Doe"},)"
    R"("ticket":null,"pricing":{"original":2500,"retail":2500,"net":2000,"currency":"GBP",)"
    R"("currencyPrecision":2,"includedTaxes":[{"name":"VAT 20","retail":417,"net":333}]}},)"
    R"({"uuid":"9c2f0a57-1d4e-4c1b-8f0a-3e6f7d8a9b10","resellerReference":null,"supplierReference":"U2",)"
    R"("unitId":"child","status":"CONFIRMED","utcRedeemedAt":null,"contact":{"fullName":"Jane Doe"},)"
    R"("ticket":null,"pricing":{"original":1500,"retail":1500,"net":1200,"currency":"GBP",)"
    R"("currencyPrecision":2,"includedTaxes":[{"name":"VAT 20","retail":250,"net":200}]}}],)"
    R"("pricing":{"original":4000,"retail":4000,"net":3200,"currency":"GBP","currencyPrecision":2,)"
    R"("includedTaxes":[{"name":"VAT 20","retail":667,"net":533}]},"settlementMethod":"DIRECT",)"
    R"("localDateTimeStart":"2026-12-01T09:00:00+00:00","localDateTimeEnd":"2026-12-01T10:00:00+00:00",)"
    R"("metadata":{},"active":true})";

}  // namespace

// ------------------------------------------------------------------ tenant --

absl::StatusOr<Tenant> CreateTenant(const std::shared_ptr<grpc::Channel>& channel, int sink_port,
                                    int webhooks, const std::vector<std::string>& capabilities,
                                    bool ordered) {
  constexpr auto kTimeout = std::chrono::seconds(30);
  auto admin = v1::AdminService::NewStub(channel);
  Tenant tenant;

  v1::CreateSupplierRequest supplier_req;
  supplier_req.set_name("Bench Tours");
  supplier_req.set_endpoint("https://api.bench-tours.example.com/octo");
  supplier_req.mutable_contact()->set_website("https://bench-tours.example.com");
  supplier_req.mutable_contact()->set_email("support@bench-tours.example.com");
  supplier_req.mutable_contact()->set_telephone("+44 20 7946 0000");
  supplier_req.mutable_contact()->set_address("1 Example Street, London");
  v1::Supplier supplier;
  grpc::Status s = admin->CreateSupplier(Context(kTimeout).get(), supplier_req, &supplier);
  if (!s.ok()) return RpcError("CreateSupplier", s);
  tenant.supplier_id = supplier.id();

  v1::CreateConnectionRequest connection_req;
  connection_req.set_supplier_id(tenant.supplier_id);
  connection_req.set_name("Bench reseller");
  connection_req.set_max_webhooks(std::max(webhooks, 1));
  v1::Connection connection;
  s = admin->CreateConnection(Context(kTimeout).get(), connection_req, &connection);
  if (!s.ok()) return RpcError("CreateConnection", s);
  tenant.connection_id = connection.id();

  // Many webhooks (the fan-out phase: 10,000) are created by a few threads.
  const int threads = std::clamp(webhooks / 250, 1, 8);
  std::vector<std::string> ids(static_cast<std::size_t>(std::max(webhooks, 0)));
  std::vector<absl::Status> errors(static_cast<std::size_t>(threads));
  auto create = [&](int t) {
    auto stub = v1::SubscriptionService::NewStub(channel);
    for (int i = t; i < webhooks; i += threads) {
      v1::CreateWebhookRequest req;
      req.set_connection_id(tenant.connection_id);
      req.set_event("booking_update");
      req.set_url(absl::StrCat("http://127.0.0.1:", sink_port, "/hook/", i));
      req.set_retry_on_error(true);
      req.set_use_contact_language(false);
      if (ordered) req.set_ordered(true);
      for (const std::string& c : capabilities) req.add_capabilities(c);
      v1::CreateWebhookResponse resp;
      const grpc::Status status = stub->CreateWebhook(Context(kTimeout).get(), req, &resp);
      if (!status.ok()) {
        errors[static_cast<std::size_t>(t)] = RpcError("CreateWebhook", status);
        return;
      }
      ids[static_cast<std::size_t>(i)] = resp.webhook().id();
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(create, t);
  create(0);
  for (std::thread& w : workers) w.join();
  for (const absl::Status& e : errors) {
    if (!e.ok()) return e;
  }
  tenant.webhook_ids = std::move(ids);
  return tenant;
}

// ------------------------------------------------------------------ events --

void EventFactory::Fill(char phase, std::int64_t index, std::int64_t published_ns,
                        v1::PublishEventRequest& event) const {
  const std::int64_t resource = resources_ > 0 ? index % resources_ : index;
  event.Clear();
  event.set_idempotency_key(absl::StrCat("bench-", run_id_, "-", std::string(1, phase), "-", index));
  event.set_supplier_id(supplier_id_);
  event.set_event("booking_update");
  const std::string uuid =
      absl::StrFormat("%s-%04x-4000-8000-%012x", run_id_, static_cast<unsigned>(phase), resource);
  std::string* json = event.mutable_resource_json();
  json->reserve(sizeof(kBookingMiddle) + 160);
  absl::StrAppend(json, "{\"benchPublishedAtNs\":", published_ns, ",\"id\":\"", uuid, "\",\"uuid\":\"",
                  uuid, kBookingMiddle);
  event.mutable_occurred_at()->set_seconds(published_ns / 1'000'000'000);
  event.mutable_occurred_at()->set_nanos(static_cast<std::int32_t>(published_ns % 1'000'000'000));
}

// --------------------------------------------------------------- publisher --

Publisher::Publisher(std::shared_ptr<grpc::Channel> channel, const EventFactory& factory, int workers,
                     std::chrono::milliseconds rpc_timeout)
    : channel_(std::move(channel)), factory_(factory), rpc_timeout_(rpc_timeout) {
  for (int i = 0; i < std::max(workers, 1); ++i) workers_.emplace_back([this] { Work(); });
}

Publisher::~Publisher() { Finish(); }

void Publisher::Submit(char phase, std::int64_t first, int count, std::int64_t scheduled_ns) {
  absl::MutexLock lock(&mu_);
  queue_.push_back({phase, first, count, scheduled_ns});
}

void Publisher::Finish() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

void Publisher::Abandon() {
  absl::MutexLock lock(&mu_);
  stats_.batches_failed += queue_.size();
  queue_.clear();
}

bool Publisher::failed() const {
  absl::MutexLock lock(&mu_);
  return stats_.batches_failed > 0;
}

PublishStats Publisher::Stats() const {
  PublishStats s;
  {
    absl::MutexLock lock(&mu_);
    s = stats_;
  }
  s.rpc_latency = rpc_latency_.Snapshot();
  return s;
}

void Publisher::Work() {
  auto stub = v1::EventService::NewStub(channel_);
  for (;;) {
    Batch batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Publisher* p) { return !p->queue_.empty() || p->closing_; },
          this));
      if (queue_.empty()) return;  // closing and drained
      batch = queue_.front();
      queue_.pop_front();
    }
    Send(batch, *stub);
  }
}

void Publisher::Send(const Batch& batch, v1::EventService::Stub& stub) {
  const std::int64_t now_ns = RealtimeNs();
  const std::int64_t published_ns = batch.scheduled_ns > 0 ? batch.scheduled_ns : now_ns;
  v1::PublishEventsRequest request;
  for (int i = 0; i < batch.count; ++i) {
    factory_.Fill(batch.phase, batch.first + i, published_ns, *request.add_events());
  }
  grpc::Status status;
  v1::PublishEventsResponse response;
  int retries = 0;
  const auto start = steady_clock::now();
  for (int attempt = 0;; ++attempt) {
    response.Clear();
    status = stub.PublishEvents(Context(rpc_timeout_).get(), request, &response);
    if (status.ok() || status.error_code() == grpc::StatusCode::INVALID_ARGUMENT || attempt == 7) break;
    ++retries;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 << attempt, 1000)));
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - start);
  absl::MutexLock lock(&mu_);
  stats_.retries += static_cast<std::uint64_t>(retries);
  if (batch.scheduled_ns > 0) {
    stats_.max_queue_wait_us = std::max(stats_.max_queue_wait_us, (now_ns - batch.scheduled_ns) / 1000);
  }
  if (!status.ok()) {
    ++stats_.batches_failed;
    if (stats_.first_error.empty()) {
      stats_.first_error = absl::StrCat("PublishEvents: ", status.error_code(), " ", status.error_message());
    }
    return;
  }
  rpc_latency_.Record(static_cast<std::uint64_t>(us.count()));
  ++stats_.batches_ok;
  stats_.events += static_cast<std::uint64_t>(response.results_size());
  for (const auto& r : response.results()) {
    stats_.deliveries += static_cast<std::uint64_t>(r.delivery_count());
    if (r.duplicate()) ++stats_.duplicates;
  }
}

// -------------------------------------------------------------------- sink --

SinkClient::SinkClient(int port) : http_(port, std::chrono::seconds(10)) { http_.set_keep_alive(true); }

absl::StatusOr<SinkStats> SinkClient::Stats() {
  absl::StatusOr<testing::HttpResponse> r = http_.Send({.method = "GET", .target = "/stats", .headers = {}, .body = std::nullopt});
  if (!r.ok()) return r.status();
  if (r->status != 200) return absl::InternalError(absl::StrCat("GET /stats: HTTP ", r->status));
  try {
    const boost::json::object o = boost::json::parse(r->body).as_object();
    auto u = [&o](const char* k) { return o.at(k).to_number<std::uint64_t>(); };
    SinkStats s;
    s.requests = u("requests");
    s.body_bytes = u("body_bytes");
    s.responses_2xx = u("responses_2xx");
    s.unmarked = u("unmarked");
    s.bad_requests = u("bad_requests");
    s.connections = u("connections");
    s.first_ns = o.at("first_ns").to_number<std::int64_t>();
    s.last_ns = o.at("last_ns").to_number<std::int64_t>();
    const boost::json::object& l = o.at("latency_us").as_object();
    auto lu = [&l](const char* k) { return l.at(k).to_number<std::uint64_t>(); };
    s.latency.count = lu("count");
    s.latency.min_us = lu("min");
    s.latency.mean_us = static_cast<double>(lu("mean"));
    s.latency.p50_us = lu("p50");
    s.latency.p90_us = lu("p90");
    s.latency.p99_us = lu("p99");
    s.latency.p999_us = lu("p999");
    s.latency.max_us = lu("max");
    return s;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("GET /stats: unparsable answer: ", e.what()));
  }
}

absl::Status SinkClient::Reset() {
  absl::StatusOr<testing::HttpResponse> r = http_.Send({.method = "GET", .target = "/reset", .headers = {}, .body = std::nullopt});
  if (!r.ok()) return r.status();
  if (r->status != 200) return absl::InternalError(absl::StrCat("GET /reset: HTTP ", r->status));
  return absl::OkStatus();
}

}  // namespace octo::perf
