#!/usr/bin/env node
// Validates an OpenAPI document with the public @apidevtools/swagger-parser
// (pinned in package-lock.json), then checks that it documents every route
// the gateway serves.
//
// Usage: node check.mjs <openapi.yaml>   with, on stdin, a JSON array of
//   {"method": "GET", "path": "/octo/webhooks/:id"}   (the router's templates)
// Path parameters match by position: ":id" and "{webhookId}" are the same.
//
// Exit status 0 and "valid: ..." on stdout when the document is valid and
// complete; 1 and the reasons on stderr otherwise. Used by tests/gateway
// through $OCTO_OPENAPI_CHECK (scripts/test.sh).
import SwaggerParser from "@apidevtools/swagger-parser";

function fail(why) {
  process.stderr.write(`${why}\n`);
  process.exit(1);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const file = process.argv[2];
if (!file) fail("usage: check.mjs <openapi.yaml> < routes.json");

let routes;
try {
  routes = JSON.parse(await readStdin());
} catch (e) {
  fail(`routes on stdin are not JSON: ${e.message}`);
}
if (!Array.isArray(routes) || routes.length === 0) fail("routes on stdin: expected a non-empty array");

let api;
try {
  // validate() checks the document against the OpenAPI schema and resolves
  // every $ref; it throws on the first problem.
  api = await SwaggerParser.validate(file);
} catch (e) {
  fail(`invalid OpenAPI document: ${e.message}`);
}

const shape = (p) => p.replace(/\{[^}/]+\}/g, "{}").replace(/:[^/]+/g, "{}");
const documented = new Map();
for (const [path, item] of Object.entries(api.paths ?? {})) {
  documented.set(shape(path), item);
}

const missing = [];
for (const { method, path } of routes) {
  const item = documented.get(shape(path));
  if (!item || !item[method.toLowerCase()]) missing.push(`${method} ${path}`);
}
if (missing.length > 0) fail(`routes the gateway serves but the document lacks:\n  ${missing.join("\n  ")}`);

// Every request on the gateway's listener counts against its client
// address's rate (and the keyed routes against the key's): every operation
// may answer 429, with Retry-After.
const unlimited = [];
for (const [path, item] of Object.entries(api.paths ?? {})) {
  for (const method of ["get", "put", "post", "patch", "delete"]) {
    const op = item[method];
    if (!op) continue;
    const tooMany = op.responses?.["429"];
    if (!tooMany || !tooMany.headers?.["Retry-After"]) unlimited.push(`${method.toUpperCase()} ${path}`);
  }
}
if (unlimited.length > 0) fail(`operations without a 429 + Retry-After response:\n  ${unlimited.join("\n  ")}`);
process.stdout.write(`valid: ${api.info.title} ${api.info.version}, ${routes.length} routes documented\n`);
