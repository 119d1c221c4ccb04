#!/usr/bin/env python3
"""Writes deploy/grafana/octo-webhooks.json, the Grafana dashboard of octo-webhooks.

The dashboard is generated so that its layout (ids, grid positions) stays
consistent when panels are added: edit the PANELS below, run
    deploy/grafana/generate_dashboard.py > deploy/grafana/octo-webhooks.json
and commit both. ctest deploy_grafana_dashboard fails when the committed JSON
differs from this script's output, and checks every query with promtool.

Queries use only the metric contract's names (docs/operations.md, "Metrics").
The queue gauges are one database query that every delivery replica
reports: they are aggregated with max, never sum.
"""
import json
import sys

RATE = "$__rate_interval"
DS = {"type": "prometheus", "uid": "${datasource}"}
EVENT = 'event=~"$event"'
JOB = 'job=~"$job"'


def q(expr, legend=""):
    return (expr, legend)


def quantiles(metric, by, selector, qs=(0.5, 0.9, 0.99)):
    """histogram_quantile targets for the given quantiles, grouped by `by`."""
    group = ", ".join(["le"] + by)
    suffix = "".join(" {{%s}}" % b for b in by)
    matchers = f"{{{selector}}}" if selector else ""
    return [
        q(
            f"histogram_quantile({x}, sum by ({group}) (rate({metric}_bucket{matchers}[{RATE}])))",
            f"p{int(x * 100)}{suffix}",
        )
        for x in qs
    ]


# (title, kind, unit, width, targets, description)
ROWS = [
    ("Overview", [
        ("Delivered per second", "stat", "reqps", 4,
         [q(f"sum(rate(octo_deliveries_delivered_total{{{EVENT}}}[{RATE}]))")],
         "Deliveries that succeeded, per second."),
        ("Attempt success ratio", "stat", "percentunit", 4,
         [q(f'sum(rate(octo_delivery_attempts_total{{outcome="success", {EVENT}}}[{RATE}])) / '
            f"sum(rate(octo_delivery_attempts_total{{{EVENT}}}[{RATE}]))")],
         "Share of delivery attempts answered 2xx."),
        ("Due deliveries", "stat", "short", 4,
         [q('max(octo_delivery_queue_deliveries{state="due"})')],
         "Deliveries whose time has come and that no dispatcher has claimed yet."),
        ("Oldest due delivery", "stat", "s", 4,
         [q("max(octo_delivery_oldest_due_age_seconds)")],
         "How long the oldest due delivery has waited. Alerts at 2 and 15 minutes."),
        ("Events published per second", "stat", "reqps", 4,
         [q(f"sum(rate(octo_events_published_total{{{EVENT}}}[{RATE}]))")],
         "New events accepted by EventService (duplicates excluded)."),
        ("Targets up", "stat", "short", 4,
         [q(f'sum by (job) (up{{{JOB}}})', "{{job}}")],
         "Instances Prometheus scrapes successfully, per job."),
    ]),
    ("Delivery", [
        ("Delivery throughput", "timeseries", "reqps", 12,
         [q(f"sum by (outcome) (rate(octo_delivery_attempts_total{{{EVENT}}}[{RATE}]))", "attempts {{outcome}}"),
          q(f"sum(rate(octo_deliveries_delivered_total{{{EVENT}}}[{RATE}]))", "delivered")],
         "Attempts per second by outcome (success, retry = will be retried, failed = given up), "
         "and deliveries that succeeded."),
        ("Success ratio", "timeseries", "percentunit", 12,
         [q(f'sum(rate(octo_delivery_attempts_total{{outcome="success", {EVENT}}}[{RATE}])) / '
            f"sum(rate(octo_delivery_attempts_total{{{EVENT}}}[{RATE}]))", "attempts answered 2xx")],
         "Share of attempts that succeeded. The failure alert fires below 75% over 15 minutes."),
        ("Publish to delivered latency", "timeseries", "s", 12,
         quantiles("octo_delivery_latency_seconds", [], EVENT),
         "From the event's creation to the end of its first successful attempt (retries included)."),
        ("Attempt duration by outcome", "timeseries", "s", 12,
         quantiles("octo_delivery_attempt_duration_seconds", ["outcome"], "", (0.5, 0.99)),
         "Duration of one HTTP attempt, connect to last byte."),
        ("Backlog by state", "timeseries", "short", 12,
         [q("max by (state) (octo_delivery_queue_deliveries)", "{{state}}")],
         "Pending deliveries: due (waiting for a dispatcher), retry_scheduled (waiting for their "
         "next attempt), in_flight (claimed, being sent), held (ordered, waiting for their resource)."),
        ("Oldest due delivery age", "timeseries", "s", 12,
         [q("max(octo_delivery_oldest_due_age_seconds)", "oldest due")],
         "Age of the oldest delivery that is due and not claimed."),
        ("Retries and given up", "timeseries", "reqps", 8,
         [q(f'sum(rate(octo_delivery_attempts_total{{outcome="retry", {EVENT}}}[{RATE}]))', "retry scheduled"),
          q(f"sum(rate(octo_deliveries_given_up_total{{{EVENT}}}[{RATE}]))", "given up")],
         "Failed attempts that will be retried, and deliveries given up (no attempts left, or retryOnError false)."),
        ("Failures by error class", "timeseries", "reqps", 8,
         [q(f'sum by (error_class) (rate(octo_delivery_attempts_total{{outcome!="success", {EVENT}}}[{RATE}]))',
            "{{error_class}}")],
         "http: a response (status_class says which); dns, connect, tls, timeout: the network; "
         "blocked: refused destination; internal: our side."),
        ("Responses by status class", "timeseries", "reqps", 8,
         [q(f"sum by (status_class) (rate(octo_delivery_attempts_total{{{EVENT}}}[{RATE}]))", "{{status_class}}")],
         "HTTP status class of each attempt (none: no response)."),
        ("Webhooks disabled (last hour)", "timeseries", "short", 12,
         [q("sum by (reason) (increase(octo_webhooks_disabled_total[1h]))", "{{reason}}")],
         "Webhooks disabled by the delivery service: gone (410) or failing (endpoint health)."),
        ("Claims and releases", "timeseries", "reqps", 12,
         [q(f"sum(rate(octo_delivery_claimed_total[{RATE}]))", "claimed"),
          q(f"sum(rate(octo_delivery_handed_off_total[{RATE}]))", "handed off at enqueue"),
          q(f"sum by (reason) (rate(octo_delivery_released_total[{RATE}]))", "released {{reason}}")],
         "Deliveries claimed by the dispatchers or handed to them at enqueue (leased at "
         "insert, no claim), and those released unsent (backlog: the "
         "destination could not start them within the lease; queue_wait, limit, shutdown). "
         "Releases near the claim rate mean a saturated destination."),
        ("Fan-out per event", "timeseries", "short", 12,
         quantiles("octo_event_fanout_webhooks", [], "", (0.5, 0.99))
         + [q(f"sum(rate(octo_event_fanout_webhooks_sum[{RATE}])) / sum(rate(octo_event_fanout_webhooks_count[{RATE}]))",
              "mean")],
         "Deliveries created per new event."),
    ]),
    ("Per event type", [
        ("Published by event", "timeseries", "reqps", 8,
         [q(f"sum by (event) (rate(octo_events_published_total{{{EVENT}}}[{RATE}]))", "{{event}}"),
          q(f"sum by (event) (rate(octo_events_duplicate_total{{{EVENT}}}[{RATE}]))", "{{event}} duplicates")],
         "New events and idempotent replays, per event type."),
        ("Delivered by event", "timeseries", "reqps", 8,
         [q(f"sum by (event) (rate(octo_deliveries_delivered_total{{{EVENT}}}[{RATE}]))", "{{event}}")],
         "Deliveries that succeeded, per event type."),
        ("Failure ratio by event", "timeseries", "percentunit", 8,
         [q(f'sum by (event) (rate(octo_delivery_attempts_total{{outcome!="success", {EVENT}}}[{RATE}])) / '
            f"sum by (event) (rate(octo_delivery_attempts_total{{{EVENT}}}[{RATE}]))", "{{event}}")],
         "Share of attempts that failed, per event type."),
        ("Latency p99 by event", "timeseries", "s", 12,
         quantiles("octo_delivery_latency_seconds", ["event"], EVENT, (0.99,)),
         "Publish to delivered, 99th percentile, per event type."),
        ("Given up by event", "timeseries", "reqps", 12,
         [q(f"sum by (event) (rate(octo_deliveries_given_up_total{{{EVENT}}}[{RATE}]))", "{{event}}")],
         "Deliveries given up, per event type."),
    ]),
    ("Gateway (REST)", [
        ("Requests by route and status", "timeseries", "reqps", 12,
         [q(f"sum by (route, code) (rate(octo_gateway_http_requests_total[{RATE}]))", "{{route}} {{code}}")],
         "REST requests per second by route template and HTTP status."),
        ("5xx ratio", "timeseries", "percentunit", 12,
         [q(f'sum(rate(octo_gateway_http_requests_total{{code=~"5.."}}[{RATE}])) / '
            f"sum(rate(octo_gateway_http_requests_total[{RATE}]))", "5xx")],
         "Share of REST requests answered 5xx. Alerts above 5% for 10 minutes."),
        ("Latency by route", "timeseries", "s", 12,
         quantiles("octo_gateway_http_request_duration_seconds", ["route"], "", (0.5, 0.99)),
         "REST request duration by route template."),
        ("In flight", "timeseries", "short", 12,
         [q("sum by (instance) (octo_gateway_http_requests_in_flight)", "{{instance}}")],
         "Requests being served."),
        ("Key and list caches", "timeseries", "reqps", 8,
         [q(f"sum by (result) (rate(octo_gateway_auth_cache_lookups_total[{RATE}]))", "key {{result}}"),
          q(f"sum by (result) (rate(octo_gateway_list_cache_lookups_total[{RATE}]))", "list {{result}}")],
         "API-key lookups answered from memory (hit, negative_hit: an unknown key refused) or "
         "asked of octo-subscription (miss); webhook lists from memory or fetched."),
        ("Refused by limits", "timeseries", "reqps", 16,
         [q(f"sum by (reason) (rate(octo_gateway_rejected_total[{RATE}]))", "{{reason}}")],
         "Requests answered 429 (key_rate, address_rate) and connections closed at once "
         "(address_connections, connections) by the gateway's limits."),
    ]),
    ("gRPC", [
        ("Server RPCs", "timeseries", "reqps", 8,
         [q(f"sum by (job, grpc_method) (rate(grpc_server_handled_total{{{JOB}}}[{RATE}]))", "{{job}} {{grpc_method}}"),
          q(f"sum by (job) (rate(grpc_server_started_total{{{JOB}}}[{RATE}]))", "{{job}} started")],
         "RPCs handled by each service, per method."),
        ("Server errors", "timeseries", "reqps", 8,
         [q(f'sum by (job, grpc_method, grpc_code) (rate(grpc_server_handled_total{{{JOB}, grpc_code!="OK"}}[{RATE}]))',
            "{{job}} {{grpc_method}} {{grpc_code}}")],
         "RPCs that did not answer OK, by code. InvalidArgument/NotFound are the callers'; "
         "Internal/Unavailable/Unknown/DeadlineExceeded are ours."),
        ("Server latency p99", "timeseries", "s", 8,
         quantiles("grpc_server_handling_seconds", ["job", "grpc_method"], JOB, (0.99,)),
         "Handling time, 99th percentile, per method."),
        ("Client RPCs", "timeseries", "reqps", 8,
         [q(f"sum by (job, grpc_method) (rate(grpc_client_handled_total{{{JOB}}}[{RATE}]))", "{{job}} {{grpc_method}}"),
          q(f"sum by (job) (rate(grpc_client_started_total{{{JOB}}}[{RATE}]))", "{{job}} started")],
         "Calls between our processes: gateway -> subscription, subscription -> delivery."),
        ("Client errors", "timeseries", "reqps", 8,
         [q(f'sum by (job, grpc_method, grpc_code) (rate(grpc_client_handled_total{{{JOB}, grpc_code!="OK"}}[{RATE}]))',
            "{{job}} {{grpc_method}} {{grpc_code}}")],
         "Outgoing calls that did not answer OK, by code."),
        ("Client latency p99", "timeseries", "s", 8,
         quantiles("grpc_client_handling_seconds", ["job", "grpc_method"], JOB, (0.99,)),
         "Outgoing call time, 99th percentile, per method."),
        ("Refused internal callers", "timeseries", "reqps", 8,
         [q(f"sum by (job, code, caller) (rate(octo_grpc_calls_refused_total{{{JOB}}}[{RATE}]))",
            "{{job}} {{caller}} {{code}}")],
         "Calls refused by the internal authentication before any handler: caller 'unknown' "
         "sent no token or nobody's; a known caller with PERMISSION_DENIED called outside its "
         "services. Any steady rate is a misconfigured token (docs/operations.md, "
         "OctoGrpcCallsRefused)."),
    ]),
    ("PostgreSQL", [
        ("Pool connections", "timeseries", "short", 12,
         [q(f"sum by (job, state) (octo_pg_pool_connections{{{JOB}}})", "{{job}} {{state}}")],
         "Connections of each process's pool, in use and idle. The pool grows on demand up to "
         "--db_pool_size: in_use at that size means requests wait for a connection."),
        ("Query latency p99", "timeseries", "s", 12,
         quantiles("octo_pg_query_duration_seconds", ["job", "operation"], JOB, (0.99,)),
         "Statement time, 99th percentile, per statement name."),
        ("Queries per second", "timeseries", "reqps", 12,
         [q(f"sum by (job, operation) (rate(octo_pg_query_duration_seconds_count{{{JOB}}}[{RATE}]))",
            "{{job}} {{operation}}")],
         "Statements executed, per statement name."),
        ("Errors", "timeseries", "reqps", 12,
         [q(f"sum by (job, operation) (rate(octo_pg_errors_total{{{JOB}}}[{RATE}]))", "{{job}} {{operation}}")],
         "Statements that failed, per statement name."),
    ]),
    ("Retention", [
        ("Partition runway", "stat", "s", 6,
         [q("max(octo_retention_partition_runway_seconds)")],
         "How far ahead the weekly partitions of events, deliveries and attempts reach: publishing "
         "fails when it reaches 0 (there is no default partition). 7 to 14 days when healthy; "
         "critical alert below 3 days."),
        ("Oldest partition age", "stat", "s", 6,
         [q("max(octo_retention_oldest_partition_age_seconds)")],
         "Age of the oldest stored week: about --retention + 1 week when healthy. Alerts at "
         "retention + 2 weeks (a pending delivery holds its week, or drops fail)."),
        ("Since the last successful pass", "stat", "s", 6,
         [q("time() - max(octo_retention_last_success_timestamp_seconds)")],
         "Time since any delivery replica last finished a maintenance pass. Alerts after three "
         "--retention_interval periods (at least 3 hours)."),
        ("Slices held", "stat", "short", 6,
         [q("max(octo_retention_slices_held)")],
         "Expired weeks kept at the last pass because a delivery in them is pending (or they were busy)."),
        ("Runway and oldest partition", "timeseries", "s", 12,
         [q("max(octo_retention_partition_runway_seconds)", "runway"),
          q("max(octo_retention_oldest_partition_age_seconds)", "oldest partition age"),
          q("max(octo_retention_period_seconds) + 14 * 86400", "oldest age alert threshold")],
         "The runway falls between passes and jumps by a week when a pass creates the next week; "
         "the oldest age climbs to retention + 1 week and falls when a pass drops a week."),
        ("Passes by outcome", "timeseries", "short", 12,
         [q(f"sum by (outcome) (increase(octo_retention_passes_total{{{JOB}}}[1h]))", "{{outcome}}")],
         "Maintenance passes per hour over all replicas: ok (this replica did the work), skipped "
         "(another replica held the lock), error (see the delivery log)."),
        ("Partitions created and weeks dropped", "timeseries", "short", 8,
         [q(f"sum(increase(octo_retention_partitions_created_total{{{JOB}}}[1d]))", "partitions created"),
          q(f"sum(increase(octo_retention_slices_dropped_total{{{JOB}}}[1d]))", "weeks dropped"),
          q(f"sum(increase(octo_retention_ordered_resources_pruned_total{{{JOB}}}[1d]))",
            "ordered resources pruned")],
         "Per day: three partitions a week are created, one week (three partitions) is dropped."),
        ("Last pass duration", "timeseries", "s", 8,
         [q(f"octo_retention_last_pass_duration_seconds{{{JOB}}}", "{{instance}}")],
         "Duration of each replica's last pass that did the work or failed."),
        ("Time since the last successful pass", "timeseries", "s", 8,
         [q("time() - max(octo_retention_last_success_timestamp_seconds)", "since the last success"),
          q("clamp_min(3 * max(octo_retention_interval_seconds), 3 * 3600)", "alert threshold")],
         "A saw-tooth of one --retention_interval when healthy."),
    ]),
    ("Process", [
        ("CPU", "timeseries", "percentunit", 6,
         [q(f"rate(process_cpu_seconds_total{{{JOB}}}[{RATE}])", "{{job}} {{instance}}")],
         "CPU time per second (1 = one core)."),
        ("Resident memory", "timeseries", "bytes", 6,
         [q(f"process_resident_memory_bytes{{{JOB}}}", "{{job}} {{instance}}"),
          q(f"process_virtual_memory_bytes{{{JOB}}}", "{{job}} {{instance}} virtual")],
         "Resident and virtual memory."),
        ("Open file descriptors", "timeseries", "short", 6,
         [q(f"process_open_fds{{{JOB}}}", "{{job}} {{instance}}"),
          q(f"process_max_fds{{{JOB}}}", "{{job}} {{instance}} limit")],
         "Open file descriptors and their limit. Alerts above 80%."),
        ("Uptime", "timeseries", "s", 6,
         [q(f"time() - process_start_time_seconds{{{JOB}}}", "{{job}} {{instance}}")],
         "Time since each process started; a saw-tooth is a crash loop."),
    ]),
]


def panel(next_id, title, kind, unit, width, targets, description, x, y):
    height = 4 if kind == "stat" else 8
    p = {
        "id": next_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": height, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"datasource": DS, "refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend or "__auto",
             "range": True}
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    else:
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10}
    return p, height


def build():
    panels = []
    next_id = 1
    y = 0
    for row_title, row_panels in ROWS:
        panels.append({"id": next_id, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for title, kind, unit, width, targets, description in row_panels:
            if x + width > 24:
                x = 0
                y += line_height
                line_height = 0
            p, height = panel(next_id, title, kind, unit, width, targets, description, x, y)
            panels.append(p)
            next_id += 1
            x += width
            line_height = max(line_height, height)
        y += line_height
    variable = {"current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "includeAll": True, "allValue": ".*", "multi": True, "refresh": 2, "sort": 1, "type": "query",
                "datasource": DS}
    return {
        "title": "octo-webhooks",
        "uid": "octo-webhooks",
        "description": "Delivery, publishing, REST gateway, gRPC, PostgreSQL and process metrics of "
                       "octo-webhooks. Alerts: deploy/prometheus/alerts.yml; runbook: docs/operations.md.",
        "tags": ["octo-webhooks"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 38,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard"}]},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
            dict(variable, name="job", label="Job",
                 definition='label_values(up{job=~"octo-.*"}, job)',
                 query={"query": 'label_values(up{job=~"octo-.*"}, job)', "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                 regex=""),
            dict(variable, name="event", label="Event",
                 definition="label_values(octo_events_published_total, event)",
                 query={"query": "label_values(octo_events_published_total, event)", "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                 regex=""),
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
