// Verifies an octo-webhooks delivery with the public `standardwebhooks` npm
// package (npm install standardwebhooks). docs/receiving.md explains it.
//
// Use verify() in your HTTP handler with the raw request body (a string or
// Buffer, before any JSON parsing) and the request headers. Run as a script,
// it reads one JSON object from stdin -- {"secret": "whsec_...", "headers":
// {...}, "body": "..."} -- and exits 0 when the signature verifies (the
// project's tests run it so).
import { Webhook } from "standardwebhooks";

// Returns the parsed body; throws when the signature, or the timestamp (5
// minutes of tolerance), does not verify.
export function verify(secret, headers, rawBody) {
  return new Webhook(secret).verify(rawBody, headers);
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { secret, headers, body } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  try {
    const payload = verify(secret, headers, body);
    console.log(`verified: ${headers["webhook-id"]}, body keys ${Object.keys(payload).join(",")}`);
  } catch (e) {
    console.error(`not verified: ${e.message}`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
