// The operators' dashboard: one page, routed by the URL's hash.
//   #/connections                 the supplier's connections
//   #/webhooks?connectionId=&event=&status=   every webhook, filtered
//   #/webhooks/new                + New Webhook (the seed's steps)
//   #/webhooks/<id>               one webhook: edit, actions, delivery log
// Everything is built with DOM calls (never innerHTML), so data from the API
// is never interpreted as markup. State-changing calls carry the session's
// CSRF token.
"use strict";

const EVENTS = [
  ["order_update", "Order Update", "triggered when an existing order is confirmed, updated or cancelled"],
  ["booking_update", "Booking Update", "triggered when an existing booking is confirmed, updated or cancelled"],
  ["availability_update", "Availability Update", "triggered when an availability changes"],
  ["product_update", "Product Update", "triggered when a product is changed"],
];
const EVENT_NAMES = Object.fromEntries(EVENTS.map(([id, name]) => [id, name]));
const STATES = ["pending", "succeeded", "failed", "cancelled"];

let session = null;
const view = document.getElementById("view");

// ------------------------------------------------------------------ DOM --

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function show(...children) {
  view.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function notice(text, kind) {
  return h("p", { class: "notice " + (kind || ""), role: "status" }, text);
}

// ------------------------------------------------------------------ API --

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.errorMessage) || "Request failed (" + status + ")");
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrfToken;
  const response = await fetch("/dashboard/api/" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = null;
  }
  if (response.status === 401 && path !== "login") {
    window.location.assign("/dashboard/login");
    throw new ApiError(401, data);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// --------------------------------------------------------------- health --

function healthChart(health) {
  const hours = health.hours || [];
  const max = Math.max(1, ...hours.map((x) => x.succeeded + x.failed));
  const chart = svg("svg", { class: "chart", viewBox: "0 0 96 24", width: "96", height: "24", role: "img" });
  const title = svg("title", {});
  title.textContent = `Attempts in the last 24 h: ${health.succeeded24h} succeeded, ${health.failed24h} failed`;
  chart.append(title);
  hours.forEach((hour, i) => {
    const ok = Math.round((hour.succeeded / max) * 22);
    const bad = Math.round((hour.failed / max) * 22);
    if (ok > 0) chart.append(svg("rect", { x: i * 4, y: 24 - ok, width: 3, height: ok, class: "ok" }));
    if (bad > 0) chart.append(svg("rect", { x: i * 4, y: 24 - ok - bad, width: 3, height: bad, class: "bad" }));
    if (ok + bad === 0) chart.append(svg("rect", { x: i * 4, y: 23, width: 3, height: 1, class: "none" }));
  });
  return chart;
}

function rate(health) {
  if (health.successRate === null || health.successRate === undefined) return "no attempts";
  return Math.round(health.successRate * 1000) / 10 + "% ok";
}

// The detail page's health line: chart, success rate, the attempts and
// the pending deliveries.
function healthSummary(health) {
  return [healthChart(health), h("span", {}, h("span", { id: "health-rate" }, rate(health)), " in the last 24 h (",
    h("span", { id: "health-succeeded" }, String(health.succeeded24h)), " succeeded, ",
    h("span", { id: "health-failed" }, String(health.failed24h)), " failed attempts) · ",
    h("span", { id: "health-pending" }, String(health.pendingDeliveries)), " pending")];
}

function statusBadge(w) {
  if (w.status === "disabled") {
    return h("span", { class: "badge bad", title: w.disabledReason || "" },
      "disabled", w.disabledReason ? " — " + w.disabledReason : "");
  }
  return h("span", { class: "badge ok" }, "enabled");
}

// Ordered delivery (docs/delivery.md, "Ordered delivery"): shown beside the
// status, since it explains deliveries that wait for an earlier one.
function orderedBadge(w) {
  return w.ordered ? h("span", { class: "badge ordered", title: "each resource's deliveries are sent one at a " +
    "time, in the order their events occurred" }, "ordered") : null;
}

// ---------------------------------------------------------- connections --

async function connectionsPage() {
  const { connections } = await api("GET", "connections");
  const rows = connections.map((c) =>
    h("tr", {},
      h("td", {}, c.name),
      h("td", { class: "num" }, String(c.webhookCount)),
      h("td", { class: "num" }, String(c.maxWebhooks)),
      h("td", {}, h("a", { href: "#/webhooks?connectionId=" + encodeURIComponent(c.id) }, "Webhooks"))));
  show(
    h("h1", {}, "Connections"),
    h("p", { class: "muted" }, "The connections of ", session.supplier.name,
      ": each is one partner integration, with its own webhooks."),
    connections.length === 0 ? notice("No connections yet.") :
      h("table", { class: "list", id: "connections" },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Webhooks"), h("th", {}, "Cap"), h("th", {}, ""))),
        h("tbody", {}, rows)));
}

// ------------------------------------------------------------- webhooks --

// The service answers at most this many webhooks, oldest first.
const WEBHOOK_LIST_CAP = 1000;

function hashQuery() {
  const q = window.location.hash.split("?")[1] || "";
  return new URLSearchParams(q);
}

async function webhooksPage() {
  const q = hashQuery();
  const filter = { connectionId: q.get("connectionId") || "", event: q.get("event") || "", status: q.get("status") || "" };
  const params = new URLSearchParams(Object.entries(filter).filter(([, v]) => v));
  const [{ connections }, { webhooks }] = await Promise.all([
    api("GET", "connections"),
    api("GET", "webhooks" + (params.toString() ? "?" + params : "")),
  ]);
  const apply = () => {
    const next = new URLSearchParams();
    for (const id of ["connectionId", "event", "status"]) {
      const v = document.getElementById("filter-" + id).value;
      if (v) next.set(id, v);
    }
    window.location.hash = "#/webhooks" + (next.toString() ? "?" + next : "");
  };
  const select = (id, label, options) =>
    h("label", {}, label + " ",
      h("select", { id: "filter-" + id, onchange: apply },
        h("option", { value: "" }, "All"),
        options.map(([v, t]) => h("option", { value: v, selected: filter[id] === v }, t))));
  const rows = webhooks.map((w) =>
    h("tr", { "data-webhook-id": w.id },
      h("td", {}, h("a", { href: "#/webhooks/" + w.id, class: "url" }, w.url)),
      h("td", {}, w.connectionName),
      h("td", {}, EVENT_NAMES[w.event] || w.event),
      h("td", {}, statusBadge(w), " ", orderedBadge(w)),
      h("td", {}, w.failingSince ? h("span", { class: "bad" }, "failing since " + when(w.failingSince)) : "—"),
      h("td", { class: "num" }, rate(w.health)),
      h("td", {}, healthChart(w.health))));
  show(
    h("div", { class: "title-row" },
      h("h1", {}, "Connections › Webhooks"),
      h("a", { href: "#/webhooks/new", class: "button primary", id: "new-webhook" }, "+ New Webhook")),
    h("div", { class: "filters" },
      select("connectionId", "Connection", connections.map((c) => [c.id, c.name])),
      select("event", "Event", EVENTS.map(([id, name]) => [id, name])),
      select("status", "Status", [["enabled", "Enabled"], ["disabled", "Disabled"]])),
    webhooks.length >= WEBHOOK_LIST_CAP ? notice(`Showing the oldest ${WEBHOOK_LIST_CAP} webhooks that match: ` +
      "narrow the list with the filters to see the others.") : "",
    webhooks.length === 0 ? notice("No webhooks match.") :
      h("table", { class: "list", id: "webhooks" },
        h("thead", {}, h("tr", {}, ["URL", "Connection", "Event", "Status", "Health", "Last 24 h", "Attempts (24 h)"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, rows)));
}

// ----------------------------------------------------------- the form --

function fieldError(name) {
  return h("p", { class: "field-error", id: "error-" + name, role: "alert", hidden: true });
}

function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error, .form-error")) {
    p.hidden = true;
    p.textContent = "";
  }
}

function showError(form, error) {
  const field = error.body && error.body.field;
  const target = field && form.querySelector("#error-" + field);
  const p = target || form.querySelector(".form-error");
  p.textContent = error.message;
  p.hidden = false;
  const input = field && form.querySelector(`[name="${field}"]`);
  if (input && input.focus) input.focus();
}

// The headers textarea holds a JSON object (the seed: "JSON-like").
function readHeaders(form) {
  const text = form.querySelector("[name=headers]").value.trim();
  if (!text) return {};
  let value;
  try {
    value = JSON.parse(text.startsWith("{") ? text : "{" + text + "}");
  } catch (e) {
    throw new ApiError(400, { errorMessage: "headers: not valid JSON (" + e.message + ")", field: "headers" });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError(400, { errorMessage: "headers: must be a JSON object of strings", field: "headers" });
  }
  return value;
}

function step(n, title, description, ...content) {
  return h("fieldset", { class: "step" },
    h("legend", {}, h("span", { class: "step-number" }, String(n)), " ", title),
    description ? h("p", { class: "muted" }, description) : null,
    content);
}

function checkbox(name, label, description, checked, disabled) {
  return h("label", { class: "check" },
    h("input", { type: "checkbox", name, checked, disabled }),
    h("span", {}, h("strong", {}, label), description ? " - " + description : ""));
}

// The fields shared by create and edit. `w`: the webhook being edited.
function webhookFields(capabilities, w, connections) {
  const editing = Boolean(w);
  let n = 1;
  return [
    editing ? null : step(n++, "Connection", "Select a connection from the list of your existing connections.",
      h("select", { name: "connectionId", id: "field-connectionId", required: true },
        h("option", { value: "" }, "Select a connection…"),
        connections.map((c) => h("option", { value: c.id }, c.name))),
      fieldError("connectionId")),
    step(n++, "Options", "Check the following options as appropriate:",
      checkbox("useContactLanguage", "Use customer language",
        "the webhook body is in the language configured by the customer during booking.",
        editing ? w.useContactLanguage : true),
      checkbox("retryOnError", "Retry on error",
        "retries the webhook if the HTTP endpoint does not return a success status.",
        editing ? w.retryOnError : true),
      checkbox("ordered", "Ordered",
        "sends the deliveries of each booking, order, availability or product one at a time, in the order " +
        "their events occurred (a failing one holds back the later ones of its resource)" +
        (editing ? "; a change applies to the deliveries queued from now on" : "") + ".",
        editing ? Boolean(w.ordered) : false)),
    step(n++, "Event", "Choose an event to trigger the webhook.",
      h("div", { class: "events" }, EVENTS.map(([id, name, description]) =>
        h("label", { class: "check" },
          h("input", { type: "radio", name: "event", value: id, checked: editing && w.event === id }),
          h("span", {}, h("strong", {}, name), " - " + description)))),
      fieldError("event")),
    step(n++, "URL", "Enter the URL to be called when the webhook is triggered.",
      h("input", { name: "url", id: "field-url", type: "text", inputmode: "url", value: editing ? w.url : "",
        "data-original": editing ? w.url : null,
        placeholder: "https://example.com/webhooks/octo", size: 60 }),
      fieldError("url")),
    step(n++, "Capabilities", editing
      ? "The capabilities the webhook was created with (they decide the data in the body; create a new webhook to change them)."
      : "Select the capabilities that will be activated before triggering the webhook. These settings determine the data included in the webhook body.",
      h("div", { class: "capabilities" }, capabilities.map((c) =>
        h("label", { class: "check cap" },
          h("input", { type: "checkbox", name: "capability", value: c, checked: editing && w.capabilities.includes(c),
            disabled: editing }),
          h("code", {}, c)))),
      fieldError("capabilities")),
    step(n++, "Headers", "You can provide additional metadata in the 'Headers' field.",
      h("textarea", { name: "headers", id: "field-headers", rows: 4, cols: 60,
        placeholder: '{"Authentication": "Bearer <your_token>"}' },
        editing ? (Object.keys(w.headers).length ? JSON.stringify(w.headers, null, 1) : "") : ""),
      h("p", { class: "tip" }, "Tip: headers can be specified in JSON-like structure, for example ",
        h("code", {}, '"Content-Type": "application/json"'), " or ",
        h("code", {}, '"Authentication": "Bearer <your_token>"'), ".",
        editing ? " Stored header values are shown masked (***): type the real values again when you edit them." : ""),
      fieldError("headers")),
  ];
}

function readWebhookForm(form, editing) {
  const body = {
    useContactLanguage: form.querySelector("[name=useContactLanguage]").checked,
    retryOnError: form.querySelector("[name=retryOnError]").checked,
    ordered: form.querySelector("[name=ordered]").checked,
    url: form.querySelector("[name=url]").value.trim(),
  };
  // The URL is shown with its credentials masked: sent only when changed.
  if (editing && body.url === form.querySelector("[name=url]").dataset.original) delete body.url;
  const event = form.querySelector("[name=event]:checked");
  if (event) body.event = event.value;
  else if (!editing) throw new ApiError(400, { errorMessage: "event: choose an event", field: "event" });
  const headers = readHeaders(form);
  if (!editing || form.querySelector("[name=headers]").dataset.touched) body.headers = headers;
  if (!editing) {
    body.connectionId = form.querySelector("[name=connectionId]").value;
    body.capabilities = [...form.querySelectorAll("[name=capability]:checked")].map((c) => c.value);
  }
  return body;
}

function secretPanel(secret, title) {
  const code = h("code", { id: "secret-value" }, secret);
  const copied = h("span", { class: "muted", id: "secret-copied" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = " Copied.";
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(code);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      copied.textContent = " Selected: press Ctrl+C to copy.";
    }
  };
  return h("div", { class: "secret", id: "secret" },
    h("h2", {}, title),
    h("p", {}, "This is the only time the signing secret is shown. Store it now: receivers use it to verify the ",
      h("code", {}, "webhook-signature"), " header."),
    h("p", {}, code, " ", h("button", { type: "button", id: "copy-secret", onclick: copy }, "Copy"), copied));
}

async function newWebhookPage() {
  const [{ connections }, { capabilities }] = await Promise.all([api("GET", "connections"), api("GET", "capabilities")]);
  const form = h("form", { id: "webhook-form", novalidate: true },
    webhookFields(capabilities, null, connections),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit", class: "primary", id: "create-webhook" }, "Create Webhook"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const created = await api("POST", "webhooks", readWebhookForm(form, false));
      show(h("h1", {}, "Webhook created"),
        secretPanel(created.secret, "Signing secret"),
        h("p", {}, h("a", { href: "#/webhooks/" + created.id, id: "open-webhook" }, "Open the webhook"), " · ",
          h("a", { href: "#/webhooks" }, "Back to the webhooks")));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showError(form, error);
    }
  });
  show(h("h1", {}, "+ New Webhook"),
    connections.length === 0 ? notice("You need at least one connection before you can create a webhook.", "bad") : null,
    form);
}

// -------------------------------------------------------------- detail --

async function webhookPage(id) {
  let w;
  try {
    w = await api("GET", "webhooks/" + encodeURIComponent(id));
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      show(h("h1", {}, "Webhook not found"),
        notice("There is no such webhook among your connections.", "bad"),
        h("p", {}, h("a", { href: "#/webhooks" }, "Back to the webhooks")));
      return;
    }
    throw error;
  }
  const { capabilities } = await api("GET", "capabilities");
  const message = h("div", { id: "action-result" });
  // The health comes with the webhook; it is read again on Refresh and after
  // an action that queues deliveries (test event, redeliver, replay), not
  // when the log is paged or filtered. A failed read keeps the figures shown.
  const health = h("div", { class: "health", id: "webhook-health" }, ...healthSummary(w.health));
  const refreshHealth = async () => {
    const current = await api("GET", "webhooks/" + encodeURIComponent(w.id));
    health.replaceChildren(...healthSummary(current.health));
  };
  const log = deliveryLog(w, refreshHealth);
  show(
    h("p", {}, h("a", { href: "#/webhooks" }, "‹ Connections › Webhooks")),
    h("h1", { class: "url", id: "webhook-title" }, w.url),
    h("p", {}, statusBadge(w), " ", orderedBadge(w), " ", EVENT_NAMES[w.event] || w.event, " · ", w.connectionName,
      " · created ", when(w.createdAt),
      w.failingSince ? h("span", { class: "bad" }, " · failing since " + when(w.failingSince)) : ""),
    health,
    webhookActions(w, message, log.refresh), message,
    h("details", { id: "edit" }, h("summary", {}, "Edit"), webhookEditForm(w, capabilities)),
    log.element);
  await log.load();
}

// The detail page's buttons; `refresh` reads the log and the health again.
function webhookActions(w, message, refresh) {
  const actions = h("div", { class: "actions" });
  const act = async (label, fn) => {
    message.replaceChildren();
    try {
      await fn();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      message.replaceChildren(notice(label + ": " + error.message, "bad"));
    }
  };
  if (w.status === "disabled") {
    actions.append(h("button", { type: "button", id: "enable", onclick: () => act("Enable", async () => {
      await api("POST", `webhooks/${w.id}/enable`, {});
      await webhookPage(w.id);
    }) }, "Enable"));
  }
  actions.append(
    h("button", { type: "button", id: "send-test", onclick: () => act("Send test event", async () => {
      const d = await api("POST", `webhooks/${w.id}/test`, {});
      message.replaceChildren(notice("Test event queued: delivery " + d.id, "ok"));
      await refresh();
    }) }, "Send test event"),
    h("label", {}, "Grace period (s) ", h("input", { id: "grace", type: "number", min: 0, max: 604800, value: 3600, size: 8 })),
    h("button", { type: "button", id: "rotate-secret", onclick: () => act("Rotate secret", async () => {
      const seconds = Number(document.getElementById("grace").value || 0);
      const r = await api("POST", `webhooks/${w.id}/rotate-secret`, { gracePeriodSeconds: seconds });
      message.replaceChildren(secretPanel(r.secret, "New signing secret"),
        r.previousSecretExpiresAt ? h("p", { class: "muted" }, "The old secret also signs until " + when(r.previousSecretExpiresAt) + ".") : "");
    }) }, "Rotate secret"),
    h("button", { type: "button", id: "delete", class: "danger", onclick: () => {
      message.replaceChildren(h("div", { class: "confirm", id: "confirm-delete" },
        h("p", {}, "Delete this webhook? Its pending deliveries are dropped; this cannot be undone."),
        h("button", { type: "button", class: "danger", id: "confirm-delete-yes", onclick: () => act("Delete", async () => {
          await api("DELETE", `webhooks/${w.id}`);
          window.location.hash = "#/webhooks";
        }) }, "Delete webhook"), " ",
        h("button", { type: "button", id: "confirm-delete-no", onclick: () => message.replaceChildren() }, "Cancel")));
    } }, "Delete"));
  return actions;
}

function webhookEditForm(w, capabilities) {
  const form = h("form", { id: "edit-form", novalidate: true }, webhookFields(capabilities, w, []),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit", class: "primary", id: "save-webhook" }, "Save changes"));
  form.querySelector("[name=headers]").addEventListener("input", (e) => { e.target.dataset.touched = "1"; });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await api("PATCH", `webhooks/${w.id}`, readWebhookForm(form, true));
      await webhookPage(w.id);
      document.getElementById("action-result").replaceChildren(notice("Saved.", "ok"));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showError(form, error);
    }
  });
  return form;
}

// The delivery log. `load` reads the current page; `refresh` (Refresh, and
// after a redelivery, a replay or a test event) reads it and `readHealth`
// side by side: a failed health read does not keep the log from showing.
function deliveryLog(w, readHealth) {
  const pages = [""];  // cursors of the pages seen, for "Previous"
  let page = 0;
  const status = h("select", { id: "log-status" }, h("option", { value: "" }, "Any status"),
    STATES.map((s) => h("option", { value: s }, s)));
  const event = h("select", { id: "log-event" }, h("option", { value: "" }, "Any event"),
    EVENTS.map(([id, name]) => h("option", { value: id }, name)), h("option", { value: "webhook_test" }, "Test"));
  const table = h("tbody", { id: "deliveries" });
  const pager = h("div", { class: "pager" });
  const detail = h("div", { id: "delivery-detail" });
  const since = h("input", { id: "replay-since", type: "datetime-local" });
  const replayResult = h("span", { id: "replay-result" });

  const load = async () => {
    const q = new URLSearchParams({ limit: "20" });
    if (status.value) q.set("status", status.value);
    if (event.value) q.set("event", event.value);
    if (pages[page]) q.set("cursor", pages[page]);
    const r = await api("GET", `webhooks/${w.id}/deliveries?${q}`);
    const open = (id) => openDelivery(w, detail, id, refresh);
    table.replaceChildren(...r.deliveries.map((d) => deliveryRow(d, open)));
    if (r.deliveries.length === 0) table.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No deliveries.")));
    if (r.nextCursor) pages[page + 1] = r.nextCursor;
    pager.replaceChildren(
      h("button", { type: "button", id: "log-prev", disabled: page === 0, onclick: () => { page--; load(); } }, "‹ Newer"),
      h("span", { class: "muted" }, " Page " + (page + 1) + " "),
      h("button", { type: "button", id: "log-next", disabled: !r.nextCursor, onclick: () => { page++; load(); } }, "Older ›"));
  };
  const refresh = async () => {
    const [log] = await Promise.allSettled([load(), readHealth()]);
    if (log.status === "rejected") throw log.reason;
  };
  const firstPage = () => { pages.length = 1; page = 0; };
  status.addEventListener("change", () => { firstPage(); load(); });
  event.addEventListener("change", () => { firstPage(); load(); });

  const replay = async () => {
    replayResult.textContent = "";
    if (!since.value) {
      replayResult.textContent = " Choose a time first.";
      return;
    }
    try {
      const r = await api("POST", `webhooks/${w.id}/replay`, { since: new Date(since.value).toISOString() });
      replayResult.textContent = ` ${r.queued} failed deliveries queued again${r.more ? " (more remain: replay again)" : ""}.`;
      firstPage();
      await refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replayResult.textContent = " " + error.message;
    }
  };

  const element = h("section", { class: "log" },
    h("h2", {}, "Delivery log"),
    h("div", { class: "filters" }, status, " ", event, " ",
      h("button", { type: "button", id: "log-refresh", onclick: refresh }, "Refresh")),
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Created", "Event", "Status", "Attempts", "Last result", "webhook-id"].map((t) => h("th", {}, t)))),
      table),
    pager, detail,
    h("div", { class: "replay" }, h("label", {}, "Replay failed deliveries since ", since), " ",
      h("button", { type: "button", id: "replay", onclick: replay }, "Replay"), replayResult));
  return { element, load, refresh };
}

function deliveryRow(d, open) {
  return h("tr", { "data-delivery-id": d.id, class: "clickable", onclick: () => open(d.id) },
    h("td", {}, when(d.createdAt)),
    h("td", {}, EVENT_NAMES[d.event] || d.event),
    h("td", {}, h("span", { class: "badge " + d.status }, d.status)),
    h("td", { class: "num" }, String(d.attemptCount)),
    h("td", {}, d.lastHttpStatus ? "HTTP " + d.lastHttpStatus : d.lastErrorClass || "—"),
    h("td", {}, h("code", {}, d.webhookMessageId)));
}

// One delivery's attempts in `detail`, with its Redeliver button (which
// calls `refresh`, then shows the delivery again).
async function openDelivery(w, detail, deliveryId, refresh) {
  const d = await api("GET", `webhooks/${w.id}/deliveries/${deliveryId}`);
  const rows = (d.attempts || []).map((a) =>
    h("tr", {},
      h("td", { class: "num" }, String(a.attemptNumber)),
      h("td", {}, when(a.startedAt)),
      h("td", { class: "num" }, Math.round(a.durationMs) + " ms"),
      h("td", {}, a.httpStatus ? "HTTP " + a.httpStatus : a.errorClass),
      h("td", {}, h("pre", { class: "snippet" }, a.responseSnippet || ""))));
  detail.replaceChildren(h("div", { class: "panel", id: "attempts-panel" },
    h("h3", {}, "Delivery ", h("code", {}, d.id)),
    h("p", {}, h("span", { class: "badge " + d.status }, d.status), " · webhook-id ", h("code", {}, d.webhookMessageId),
      d.nextAttemptAt ? " · next attempt " + when(d.nextAttemptAt) : ""),
    h("table", { class: "list", id: "attempts" },
      h("thead", {}, h("tr", {}, ["#", "Time", "Duration", "Result", "Response"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No attempt yet.")))),
    h("button", { type: "button", id: "redeliver", onclick: async () => {
      try {
        await api("POST", `webhooks/${w.id}/deliveries/${d.id}/redeliver`, {});
        await refresh();
        await openDelivery(w, detail, d.id, refresh);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        detail.append(notice("Redeliver: " + error.message, "bad"));
      }
    } }, "Redeliver")));
}

// --------------------------------------------------------------- router --

async function route() {
  const path = window.location.hash.replace(/^#/, "").split("?")[0] || "/webhooks";
  for (const a of document.querySelectorAll("nav a")) a.classList.remove("active");
  try {
    if (path === "/connections") {
      document.getElementById("nav-connections").classList.add("active");
      await connectionsPage();
    } else if (path === "/webhooks/new") {
      document.getElementById("nav-webhooks").classList.add("active");
      await newWebhookPage();
    } else if (path.startsWith("/webhooks/")) {
      document.getElementById("nav-webhooks").classList.add("active");
      await webhookPage(decodeURIComponent(path.slice("/webhooks/".length)));
    } else {
      document.getElementById("nav-webhooks").classList.add("active");
      await webhooksPage();
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    show(h("h1", {}, "Something went wrong"), notice(error.message, "bad"));
  }
}

async function start() {
  try {
    session = await api("GET", "session");
  } catch (error) {
    return;  // sent to the login page
  }
  document.getElementById("who-supplier").textContent = session.supplier.name;
  document.getElementById("who-operator").textContent = session.operator.name;
  document.getElementById("logout").addEventListener("click", async () => {
    try {
      await api("POST", "logout", {});
    } finally {
      window.location.assign("/dashboard/login");
    }
  });
  window.addEventListener("hashchange", route);
  await route();
}

start();
