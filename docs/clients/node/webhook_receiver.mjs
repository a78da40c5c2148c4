#!/usr/bin/env node
// Receive c2c's callbacks and progress webhooks, checking their signatures (Node.js 18+,
// built-in http and crypto only).
//
//   export C2C_WEBHOOK_SECRET=...   # the account's webhook secret (`c2c keys create` prints it)
//   PORT=8000 node webhook_receiver.mjs
//
// Both kinds of request carry X-C2C-Timestamp and X-C2C-Signature: v1=<hex>:
// - the final callback, GET <your callback_url>&minutes=..&answered=..&reason=.., is signed over
//   the request target (path and query exactly as on the request line);
// - a progress webhook (status_callback_url), POST with a JSON body {call_id, event, at,
//   sequence}, is signed over the raw body.
// Genuine requests are answered 200 and printed as JSON lines on stdout; anything else gets 403.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

const TOLERANCE_SECONDS = 300; // refuse requests signed more than 5 minutes from our clock (replays)
const DELIVERY_ID_HEADER = 'x-c2c-delivery-id'; // a progress webhook's id, the same on each retry
const MAX_BODY = 64 * 1024;

// True if `signature` (X-C2C-Signature) is c2c's for `signed` at `timestamp` (X-C2C-Timestamp),
// and that timestamp is within the tolerance of `nowSeconds`.
// signed: a Buffer of the raw request target of a GET callback, or of the raw body of a POST
// webhook, as received: never rebuilt from parsed parameters or re-serialized JSON.
export function signatureOk(secret, timestamp, signed, signature,
  { nowSeconds = Date.now() / 1000, toleranceSeconds = TOLERANCE_SECONDS } = {}) {
  if (typeof timestamp !== 'string' || typeof signature !== 'string' || !/^[0-9]+$/.test(timestamp)) {
    return false;
  }
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) {
    return false; // stale, or from the future: possibly a replay
  }
  const expected = Buffer.from('v1=' + createHmac('sha256', secret)
    .update(`${timestamp}.`).update(signed).digest('hex'));
  // While a secret is being replaced the header may hold several comma-separated values; any
  // may match. timingSafeEqual takes the same time wherever the first difference is (it needs
  // equal lengths; a length tells nothing secret).
  return signature.split(',').some((candidate) => {
    const given = Buffer.from(candidate.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

function genuine(req, signed) {
  return signatureOk(process.env.C2C_WEBHOOK_SECRET, req.headers['x-c2c-timestamp'], signed,
    req.headers['x-c2c-signature']);
}

function accept(res, record) {
  console.log(JSON.stringify(record)); // your work here; answer within a few seconds
  res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
}

function refuse(res, status, message) {
  res.writeHead(status, { 'Content-Type': 'text/plain' }).end(message);
}

function handle(req, res, body) {
  if (req.method === 'GET') {
    // req.url is the request target exactly as on the request line, held as Latin-1: encoding
    // it back gives the very bytes that were signed.
    if (!genuine(req, Buffer.from(req.url, 'latin1'))) return refuse(res, 403, 'bad signature');
    const result = new URL(req.url, 'http://receiver').searchParams;
    // Delivery is at least once: a retry repeats X-C2C-Call-Id. Record the call id with your
    // update (one transaction), and answer a repeat 200 without acting twice.
    return accept(res, {
      kind: 'callback', call_id: req.headers['x-c2c-call-id'], answered: result.get('answered'),
      minutes: result.get('minutes'), reason: result.get('reason'),
    });
  }
  if (req.method === 'POST') {
    if (!genuine(req, body)) return refuse(res, 403, 'bad signature');
    const event = JSON.parse(body.toString('utf8'));
    // At least once, in order per call: de-duplicate on the delivery id (or call_id and
    // sequence); a sequence lower than one already seen is a repeat.
    return accept(res, {
      kind: 'progress', call_id: event.call_id, event: event.event, sequence: event.sequence,
      at: event.at, delivery_id: req.headers[DELIVERY_ID_HEADER] ?? null,
    });
  }
  return refuse(res, 405, 'GET or POST');
}

export const server = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      refuse(res, 413, 'body too large');
      req.destroy();
    } else {
      chunks.push(chunk);
    }
  });
  // The raw bytes, untouched: the signature covers them.
  req.on('end', () => {
    try {
      handle(req, res, Buffer.concat(chunks));
    } catch (error) { // a signed body that is not the JSON expected
      refuse(res, 400, 'bad request');
    }
  });
});

// Run as a script (not when imported as a module).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.env.C2C_WEBHOOK_SECRET) {
    console.error("set C2C_WEBHOOK_SECRET to the account's webhook secret");
    process.exit(1);
  }
  const host = process.env.HOST ?? '127.0.0.1';
  server.listen(Number(process.env.PORT ?? 8000), host, () => {
    console.error(`listening on http://${host}:${server.address().port}`);
  });
}
