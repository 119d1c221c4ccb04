#!/usr/bin/env node
// The operators' dashboard, every scenario, in Debian's headless Chromium
// (playwright-core, executablePath /usr/bin/chromium). Started by
// dashboard_browser_test.cc, which provides the real stack through:
//   DASHBOARD_URL                     http://127.0.0.1:<gateway>/dashboard/
//   OPERATOR_NAME/OPERATOR_PASSWORD   an operator of the supplier under test
//   OTHER_OPERATOR_NAME/_PASSWORD     an operator of another supplier
//   CONNECTION_ID                     the supplier's connection
//   RECEIVER_URL                      the partner's endpoint (200, then 500 x2, then 200)
//   CONTROL_URL                       POST <CONTROL_URL>/publish: the harness publishes a booking event
//   SCREENSHOT_DIR                    where the page screenshots go
// Exits 0 when every check passed; prints what it checked.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import path from "node:path";

const env = process.env;
for (const name of ["DASHBOARD_URL", "OPERATOR_NAME", "OPERATOR_PASSWORD", "OTHER_OPERATOR_NAME",
  "OTHER_OPERATOR_PASSWORD", "CONNECTION_ID", "RECEIVER_URL", "CONTROL_URL", "SCREENSHOT_DIR"]) {
  if (!env[name]) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
}
const base = env.DASHBOARD_URL;
const shots = [];
const consoleErrors = [];
// Chromium reports every non-2xx fetch as a console error; these are the
// answers the scenarios provoke on purpose (session check before login,
// field errors, another supplier's webhook, the health read made to fail
// with 503). Anything else fails the run.
const expectedHttpErrors = /^Failed to load resource: the server responded with a status of (400|401|403|404|503) /;

function step(text) {
  console.log("ok - " + text);
}

async function shot(page, name) {
  const file = path.join(env.SCREENSHOT_DIR, name + ".png");
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
}

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() === "error" && !expectedHttpErrors.test(msg.text())) consoleErrors.push(msg.text());
  });
  page.on("pageerror", (error) => consoleErrors.push("page error: " + error.message));
}

async function publish() {
  const response = await fetch(env.CONTROL_URL + "/publish", { method: "POST", body: "" });
  assert.equal(response.status, 200, "the harness's control endpoint");
}

async function login(page, name, password) {
  await page.goto(new URL("login", base).href);
  await page.fill("#login-name", name);
  await page.fill("#login-password", password);
  await Promise.all([page.waitForURL(base), page.click("button[type=submit]")]);
  await page.waitForSelector("#who-operator:has-text('" + name + "')");
}

// Clicks Refresh until the delivery row `nth` (0 = newest) shows `status`.
async function waitForDelivery(page, status, count) {
  const deadline = Date.now() + 30000;
  for (;;) {
    await page.click("#log-refresh");
    await page.waitForTimeout(300);
    const rows = page.locator("#deliveries tr[data-delivery-id]");
    if ((await rows.count()) >= count) {
      const text = await rows.first().innerText();
      if (text.includes(status)) return rows.first();
    }
    if (Date.now() > deadline) throw new Error(`no delivery became ${status} in 30 s`);
  }
}

// The detail page's health line shows these figures once the log is
// refreshed (the health is read with the log).
async function expectHealth(page, succeeded, failed, pending) {
  const want = [String(succeeded), String(failed), String(pending)];
  const deadline = Date.now() + 30000;
  for (;;) {
    await page.click("#log-refresh");
    await page.waitForTimeout(300);
    const shown = [];
    for (const id of ["#health-succeeded", "#health-failed", "#health-pending"]) shown.push(await page.innerText(id));
    if (shown.join() === want.join()) break;
    if (Date.now() > deadline) {
      throw new Error(`the health shows ${shown.join("/")}, not ${want.join("/")} (succeeded/failed/pending)`);
    }
  }
  const total = succeeded + failed;
  const rate = total === 0 ? "no attempts" : Math.round((succeeded / total) * 1000) / 10 + "% ok";
  assert.equal(await page.innerText("#health-rate"), rate);
}
// Opens one delivery's attempts (the panel of exactly that delivery).
async function openAttempts(page, deliveryId) {
  await page.click(`#deliveries tr[data-delivery-id="${deliveryId}"]`);
  await page.waitForSelector(`#attempts-panel:has-text("${deliveryId}")`);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  watch(page);

  // --- Without a session the app sends the browser to the login page.
  await page.goto(base);
  await page.waitForURL(new URL("login", base).href);
  await shot(page, "01-login");
  step("without a session /dashboard/ opens the login page");

  // A wrong password is refused on the page.
  await page.fill("#login-name", env.OPERATOR_NAME);
  await page.fill("#login-password", "opp_wrong");
  await page.click("button[type=submit]");
  await page.waitForSelector("#login-error:has-text('Wrong name or password')");
  step("a wrong password is refused");

  // --- Log in.
  await login(page, env.OPERATOR_NAME, env.OPERATOR_PASSWORD);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "octo_dashboard_session");
  assert.ok(session, "the session cookie is set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.equal(session.path, "/dashboard");
  assert.ok(session.expires > Date.now() / 1000, "the cookie expires");
  step("logged in: HttpOnly, SameSite=Strict, expiring session cookie");

  // --- Connections.
  await page.goto(base + "#/connections");
  await page.waitForSelector("#connections tbody tr");
  assert.match(await page.innerText("#connections"), /Webhooks/);
  await shot(page, "02-connections");
  step("Connections lists the supplier's connection with its webhook count and cap");

  // --- + New Webhook: the seed's steps; field errors next to their fields.
  await page.goto(base + "#/webhooks");
  await page.click("#new-webhook");
  await page.waitForSelector("#webhook-form");
  const formText = await page.innerText("#webhook-form");
  for (const words of ["Select a connection", "Use customer language", "Retry on error", "Ordered",
    "one at a time, in the order their events occurred", "Order Update",
    "triggered when an existing order is confirmed, updated or cancelled", "Booking Update", "Availability Update",
    "triggered when an availability changes", "Product Update", "triggered when a product is changed",
    "Enter the URL to be called when the webhook is triggered", "Select the capabilities", "'Headers' field",
    "octo/pricing", "octo/questions", "Create Webhook"]) {
    assert.ok(formText.includes(words), `the form says "${words}"`);
  }
  await page.selectOption("#field-connectionId", env.CONNECTION_ID);
  await page.check("input[name=event][value=booking_update]");
  await page.fill("#field-url", "example.com/hook");
  await page.click("#create-webhook");
  await page.waitForSelector("#error-url:not([hidden])");
  assert.match(await page.innerText("#error-url"), /url: must be an absolute http or https URL/);
  step("a bad URL shows its error next to the URL field");

  await page.fill("#field-url", env.RECEIVER_URL);
  await page.fill("#field-headers", '{"X-Partner": }');
  await page.click("#create-webhook");
  await page.waitForSelector("#error-headers:not([hidden])");
  assert.match(await page.innerText("#error-headers"), /headers: not valid JSON/);
  assert.equal(await page.isHidden("#error-url"), true);
  await shot(page, "03-new-webhook-field-errors");
  step("bad headers JSON shows its error next to the Headers field");

  await page.fill("#field-headers", '{"Content-Type": "text/plain"}');
  await page.click("#create-webhook");
  await page.waitForSelector("#error-headers:has-text('can only be application/json')");
  step("a Content-Type other than application/json is refused, saying why");

  await page.fill("#field-headers", '{"Content-Type": "application/json", "X-Partner": "acme"}');
  await page.check("input[name=capability][value='octo/pricing']");
  assert.equal(await page.isChecked("#webhook-form input[name=ordered]"), false, "ordered is off by default");
  await page.check("#webhook-form input[name=ordered]");
  await page.click("#create-webhook");
  await page.waitForSelector("#secret-value");
  const secret = (await page.innerText("#secret-value")).trim();
  assert.match(secret, /^whsec_/);
  await page.click("#copy-secret");
  await page.waitForSelector("#secret-copied:not(:empty)");
  await shot(page, "04-secret-shown-once");
  step("Create Webhook shows the signing secret once, with a copy button");
  const href = await page.getAttribute("#open-webhook", "href");
  const webhookId = href.split("/").pop();

  // --- Listed under Connections > Webhooks, with its health.
  await page.goto(base + "#/webhooks");
  await page.waitForSelector(`#webhooks tr[data-webhook-id="${webhookId}"]`);
  const row = await page.innerText(`#webhooks tr[data-webhook-id="${webhookId}"]`);
  assert.match(row, /enabled/);
  assert.match(row, /Booking Update/);
  assert.equal(await page.innerText(`#webhooks tr[data-webhook-id="${webhookId}"] .badge.ordered`), "ordered");
  assert.equal(await page.locator(`#webhooks tr[data-webhook-id="${webhookId}"] svg.chart`).count(), 1);
  await page.selectOption("#filter-status", "disabled");
  await page.waitForSelector("text=No webhooks match.");
  await page.selectOption("#filter-status", "enabled");
  await page.waitForSelector(`#webhooks tr[data-webhook-id="${webhookId}"]`);
  step("the webhook is listed (filters work) with its status, its ordered badge (checked at create) and 24 h chart");

  // The secret is not shown again.
  // The webhook (with its health) is read once when the page opens, not
  // again when the log is filtered.
  const webhookReads = [];
  page.on("request", (r) => {
    if (r.method() === "GET" && new URL(r.url()).pathname === "/dashboard/api/webhooks/" + webhookId) webhookReads.push(r);
  });
  await page.goto(base + "#/webhooks/" + webhookId);
  await page.waitForSelector("#webhook-title");
  await page.waitForSelector("#deliveries tr");
  assert.ok(!(await page.content()).includes(secret), "the secret is shown only once");
  assert.equal(await page.innerText("#health-rate"), "no attempts");
  assert.equal(webhookReads.length, 1, "the detail page reads the webhook and its health once when it opens");
  assert.equal(await page.locator("#view .badge.ordered").count(), 1, "the detail page shows the ordered badge");
  await page.selectOption("#log-status", "failed");
  await page.waitForSelector("#deliveries tr td.muted:has-text('No deliveries.')");
  await page.selectOption("#log-status", "");
  await page.waitForTimeout(300);
  assert.equal(webhookReads.length, 1, "filtering the log does not read the health again");
  step("the detail page reads the health once when it opens, not when the log is filtered");

  // --- Publish an event: the delivery and its attempt appear in the log.
  await publish();
  const first = await waitForDelivery(page, "succeeded", 1);
  await openAttempts(page, await first.getAttribute("data-delivery-id"));
  const attempts = await page.innerText("#attempts");
  assert.match(attempts, /HTTP 200/);
  assert.match(await page.innerText("#attempts-panel"), /msg_[0-9a-f]{32}/);
  await shot(page, "05-delivery-log");
  step("a published event's delivery and its attempt (HTTP 200, webhook-id) appear in the log");
  await expectHealth(page, 1, 0, 0);
  step("the health beside the log counts that attempt (1 succeeded, 100% ok)");

  // --- The receiver fails: the failure shows; redeliver; it succeeds.
  await publish();
  const failed = await waitForDelivery(page, "failed", 2);
  const failedId = await failed.getAttribute("data-delivery-id");
  await openAttempts(page, failedId);
  assert.match(await page.innerText("#attempts"), /HTTP 500/);
  assert.match(await page.innerText("#attempts"), /upstream down/);
  const rowCount = (n) => page.waitForFunction(
    (want) => document.querySelectorAll("#deliveries tr[data-delivery-id]").length === want, n);
  await page.selectOption("#log-status", "failed");
  await rowCount(1);
  await page.waitForSelector(`#deliveries tr[data-delivery-id="${failedId}"]`);
  await page.selectOption("#log-status", "");
  await rowCount(2);
  await shot(page, "06-failed-delivery");
  step("a failing receiver shows as a failed delivery with HTTP 500 attempts (status filter works)");
  await expectHealth(page, 1, 2, 0);
  step("the health counts the two failed attempts (1 succeeded, 2 failed)");

  await openAttempts(page, failedId);
  await page.click("#redeliver");
  const deadline = Date.now() + 30000;
  for (;;) {
    await page.click("#log-refresh");
    await page.waitForTimeout(300);
    const text = await page.innerText(`#deliveries tr[data-delivery-id="${failedId}"]`);
    if (text.includes("succeeded")) break;
    if (Date.now() > deadline) throw new Error("the redelivery did not succeed in 30 s");
  }
  await openAttempts(page, failedId);
  await page.waitForSelector('#attempts:has-text("HTTP 200")');
  assert.match(await page.innerText("#attempts"), /HTTP 500[\s\S]*HTTP 500[\s\S]*HTTP 200/);
  await shot(page, "07-redelivered");
  step("redeliver: the failed delivery succeeds");
  await expectHealth(page, 2, 2, 0);
  step("the health counts the redelivery's attempt (2 succeeded, 2 failed, 50% ok)");

  // --- Rotate the secret: the new one is shown once.
  await page.fill("#grace", "600");
  await page.click("#rotate-secret");
  await page.waitForSelector("#secret-value");
  const rotated = (await page.innerText("#secret-value")).trim();
  assert.match(rotated, /^whsec_/);
  assert.notEqual(rotated, secret);
  await shot(page, "08-rotated-secret");
  await page.reload();
  await page.waitForSelector("#webhook-title");
  assert.ok(!(await page.content()).includes(rotated), "the new secret is shown only once");
  step("rotate secret shows the new secret once");

  // --- Send a test event; edit; replay failed deliveries since a time.
  // The health read fails this time: the log still shows the new delivery.
  const healthUrl = new URL("api/webhooks/" + webhookId, base).href;
  await page.route(healthUrl, (route) => route.fulfill({ status: 503, contentType: "application/json",
    body: JSON.stringify({ error: "UNAVAILABLE", errorMessage: "try again" }) }));
  await page.click("#send-test");
  await page.waitForSelector("#action-result:has-text('Test event queued')");
  await page.waitForFunction(() => document.querySelectorAll("#deliveries tr[data-delivery-id]").length === 3);
  assert.equal(await page.innerText("#health-succeeded"), "2", "a failed health read keeps the figures shown");
  await page.unroute(healthUrl);
  step("a failed health read does not keep the log from showing the test delivery");
  await waitForDelivery(page, "succeeded", 3);
  assert.match(await page.innerText("#deliveries tr[data-delivery-id]:first-child"), /webhook_test/);
  step("send test event: a test delivery is queued and delivered");
  await expectHealth(page, 3, 2, 0);
  await page.goto(base + "#/webhooks");
  await page.waitForSelector(`#webhooks tr[data-webhook-id="${webhookId}"]`);
  assert.match(await page.innerText(`#webhooks tr[data-webhook-id="${webhookId}"]`), /60% ok/);
  assert.equal(await page.textContent(`#webhooks tr[data-webhook-id="${webhookId}"] svg.chart title`),
    "Attempts in the last 24 h: 3 succeeded, 2 failed");
  await page.goto(base + "#/webhooks/" + webhookId);
  await page.waitForSelector("#webhook-title");
  step("the detail page and the list show the same health: 3 succeeded, 2 failed, 60% ok");

  await page.click("#edit summary");
  await page.uncheck("#edit-form input[name=retryOnError]");
  assert.equal(await page.isChecked("#edit-form input[name=ordered]"), true);
  await page.uncheck("#edit-form input[name=ordered]");
  await page.fill("#edit-form input[name=url]", "example.com/no-scheme");
  await page.click("#save-webhook");
  await page.waitForSelector("#edit-form #error-url:not([hidden])");
  await page.fill("#edit-form input[name=url]", env.RECEIVER_URL + "?v=2");
  await page.click("#save-webhook");
  await page.waitForSelector("#action-result:has-text('Saved.')");
  assert.equal(await page.innerText("#webhook-title"), env.RECEIVER_URL + "?v=2");
  assert.equal(await page.isChecked("#edit-form input[name=retryOnError]"), false);
  assert.equal(await page.isChecked("#edit-form input[name=ordered]"), false);
  assert.equal(await page.locator("#view .badge.ordered").count(), 0, "no ordered badge once switched off");
  step("edit: a bad URL shows its field error; a good edit is saved (ordered switched off: no badge)");

  await page.fill("#replay-since", "2020-01-01T00:00");
  await page.click("#replay");
  await page.waitForSelector("#replay-result:has-text('queued again')");
  step("replay failed deliveries since a time answers how many were queued");

  // --- Another supplier's operator cannot see or reach the webhook.
  await page.click("#logout");
  await page.waitForURL(new URL("login", base).href);
  assert.equal((await context.cookies()).some((c) => c.name === "octo_dashboard_session" && c.value), false);
  await login(page, env.OTHER_OPERATOR_NAME, env.OTHER_OPERATOR_PASSWORD);
  await page.goto(base + "#/webhooks");
  await page.waitForSelector("text=No webhooks match.");
  assert.equal(await page.locator(`tr[data-webhook-id="${webhookId}"]`).count(), 0);
  await page.goto(base + "#/webhooks/" + webhookId);
  await page.waitForSelector("text=Webhook not found");
  await shot(page, "09-other-supplier");
  const answers = await page.evaluate(async (id) => {
    const get = await fetch("/dashboard/api/webhooks/" + id);
    const unknown = await fetch("/dashboard/api/webhooks/00000000-0000-4000-8000-000000000000");
    return [get.status, (await get.json()).errorMessage, unknown.status, (await unknown.json()).errorMessage];
  }, webhookId);
  assert.equal(answers[0], 404);
  const connection = env.CONNECTION_ID;
  const changes = await page.evaluate(async ([id, connection]) => {
    const { csrfToken } = await (await fetch("/dashboard/api/session")).json();
    const headers = { "X-CSRF-Token": csrfToken, "Content-Type": "application/json" };
    const patch = await fetch("/dashboard/api/webhooks/" + id, { method: "PATCH", headers, body: '{"url":"https://evil.example/x"}' });
    const del = await fetch("/dashboard/api/webhooks/" + id, { method: "DELETE", headers });
    const redo = await fetch("/dashboard/api/webhooks/" + id + "/rotate-secret", { method: "POST", headers, body: "{}" });
    const steal = await fetch("/dashboard/api/webhooks", { method: "POST", headers,
      body: JSON.stringify({ connectionId: connection, url: "https://evil.example/x", event: "booking_update" }) });
    return [patch.status, del.status, redo.status, steal.status, (await steal.json()).field];
  }, [webhookId, connection]);
  assert.deepEqual(changes, [404, 404, 404, 400, "connectionId"],
    "another supplier cannot change, delete or rotate the webhook, nor add one to the connection");
  assert.deepEqual([answers[0], answers[1]], [answers[2], answers[3]], "another supplier's id answers like an unknown one");
  step("another supplier's operator sees nothing and gets 404 for the webhook, also by its URL");

  // --- A state-changing call without the CSRF token is refused.
  const forged = await page.evaluate(async () => (await fetch("/dashboard/api/logout", { method: "POST" })).status);
  assert.equal(forged, 403);
  step("a state-changing request without X-CSRF-Token is refused (403)");

  // --- The owner deletes the webhook, after confirming.
  await page.click("#logout");
  await page.waitForURL(new URL("login", base).href);
  await login(page, env.OPERATOR_NAME, env.OPERATOR_PASSWORD);
  await page.goto(base + "#/webhooks/" + webhookId);
  await page.waitForSelector("#webhook-title");
  await page.click("#delete");
  await page.waitForSelector("#confirm-delete");
  await page.click("#confirm-delete-no");
  assert.equal(await page.locator("#confirm-delete").count(), 0);
  await page.click("#delete");
  await page.click("#confirm-delete-yes");
  await page.waitForSelector("text=No webhooks match.");
  step("delete asks for confirmation, then the webhook is gone");

  assert.deepEqual(consoleErrors, [], "no console errors");
  step("no console errors");
  console.log("screenshots:\n  " + shots.join("\n  "));
  console.log("all dashboard browser checks passed");
} finally {
  await browser.close();
}
