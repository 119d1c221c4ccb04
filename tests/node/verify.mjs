#!/usr/bin/env node
// Verifies one delivered webhook request with the public `standardwebhooks`
// npm package (pinned in package-lock.json), the way a partner would.
//
// Input on stdin, one JSON object:
//   {"secret": "whsec_...",
//    "headers": {"webhook-id": "...", "webhook-timestamp": "...", "webhook-signature": "..."},
//    "body": "<the raw request body as received>"}
// ("bodyBase64" may replace "body" when the bytes are not UTF-8 text.)
//
// Exit status 0 and "verified: ..." on stdout when the signature matches;
// 1 and the reason on stderr when it does not (or the input is unusable).
// Used by tests/delivery_e2e through $OCTO_NODE_VERIFIER (scripts/test.sh).
import { Webhook } from "standardwebhooks";

function fail(why) {
  process.stderr.write(`not verified: ${why}\n`);
  process.exit(1);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

let input;
try {
  input = JSON.parse(await readStdin());
} catch (e) {
  fail(`stdin is not JSON: ${e.message}`);
}
if (input === null || typeof input !== "object") fail("stdin is not a JSON object");
const { secret, headers } = input;
if (typeof secret !== "string" || secret === "") fail('"secret" must be a non-empty string');
if (headers === null || typeof headers !== "object") fail('"headers" must be an object');
let payload;
if (typeof input.body === "string") {
  payload = input.body;
} else if (typeof input.bodyBase64 === "string") {
  payload = Buffer.from(input.bodyBase64, "base64");
} else {
  fail('"body" (or "bodyBase64") must be a string');
}

try {
  const parsed = new Webhook(secret).verify(payload, headers);
  const keys = parsed !== null && typeof parsed === "object" ? Object.keys(parsed).join(",") : typeof parsed;
  process.stdout.write(`verified: webhook-id ${headers["webhook-id"]}, body keys ${keys}\n`);
  process.exit(0);
} catch (e) {
  fail(`${e.name}: ${e.message}`);
}
