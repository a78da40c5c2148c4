#!/usr/bin/env node
// Place a click-to-call call with c2c (Node.js 18+, built-in fetch and crypto only).
//
//   export C2C_URL=https://c2c.example.com C2C_API_KEY=...   # never put the key in code or logs
//   node place_call.mjs 1 2125550123 1 2125550199 [https://example.com/c2c/callback]
//
// Arguments: caller country code, caller number, callee country code, callee number (national
// numbers, digits only), and optionally the callback URL. Prints the call's id and exits 0 when
// the call was accepted; otherwise prints the code and its meaning and exits 1.
// C2C_IDEMPOTENCY_KEY names the request (default: a new random key).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const CODES = {
  0: 'accepted: the call will be attempted shortly',
  1: 'invalid api_key',
  2: 'no call credits',
  3: 'a phone number is on the Do-Not-Call list',
  4: 'badly formed request',
  5: 'api_key is disabled',
  6: 'flood protection: a number was used too recently; retry later',
  7: 'caller area code not supported',
  8: 'caller country code not supported',
  9: 'callee area code not supported',
  10: 'callee country code not supported',
  11: 'temporarily unable to place calls; retry later',
};

// Ask c2c to connect two phones. Resolves to {code, callId}; callId is null unless code is 0.
// Rejects when no answer came, or one that is not c2c's (error.status: its HTTP status).
export async function placeCall(baseUrl, apiKey, call, { idempotencyKey, timeoutMs = 15000 } = {}) {
  // A POST form body keeps the api_key out of URLs, which end up in proxy and server logs.
  // (A GET with the same parameters in the query string works too.)
  const form = new URLSearchParams({
    api_key: apiKey,
    caller_country_code: call.callerCountryCode,
    caller_phone_number: call.callerNumber,
    callee_country_code: call.calleeCountryCode,
    callee_phone_number: call.calleeNumber,
    callback_url: call.callbackUrl ?? '',
    secret: call.secret ?? '', // echoed in the callback, e.g. your own order id
  });
  const response = await fetch(`${baseUrl.replace(/\/+$/, '')}/api/clicktocall/`, {
    method: 'POST',
    body: form,
    // The same key with the same parameters, within 24 hours, answers what the first request
    // answered and places nothing: a retry after a timeout never rings the phones twice.
    headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {},
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await response.text();
  // HTTP 200 for EVERY code: the code is the body, as bare digits ("0" means accepted). Never
  // treat response.ok as "call placed". Anything but a 200 came from something in between (a
  // proxy's 502, a URL too long). (Send "Accept: application/json" to get {code, message,
  // call_id} with a fitting HTTP status instead.)
  if (response.status !== 200 || !/^[0-9]{1,2}$/.test(body) || !(body in CODES)) {
    throw Object.assign(new Error(`not a c2c answer: HTTP ${response.status}`),
      { status: response.status });
  }
  return { code: Number(body), callId: response.headers.get('x-c2c-call-id') };
}

async function main(argv) {
  if (argv.length !== 4 && argv.length !== 5) {
    console.error('usage: node place_call.mjs CALLER_CC CALLER_NUMBER CALLEE_CC CALLEE_NUMBER [CALLBACK_URL]');
    return 2;
  }
  if (!process.env.C2C_URL || !process.env.C2C_API_KEY) {
    console.error('set C2C_URL and C2C_API_KEY');
    return 2;
  }
  const [callerCountryCode, callerNumber, calleeCountryCode, calleeNumber, callbackUrl] = argv;
  // One key for every try of this one call; a new call gets a new key.
  const idempotencyKey = process.env.C2C_IDEMPOTENCY_KEY || randomUUID();
  let result;
  for (let attempt = 1; !result; attempt += 1) {
    try {
      result = await placeCall(process.env.C2C_URL, process.env.C2C_API_KEY,
        { callerCountryCode, callerNumber, calleeCountryCode, calleeNumber, callbackUrl },
        { idempotencyKey });
    } catch (error) {
      // No answer (network, timeout), or not c2c's: a proxy's 5xx may pass, a 404 won't.
      if (attempt === 3 || (error.status ?? 500) < 500) {
        console.error(`no answer from c2c: ${error.cause?.message ?? error.message}`);
        return 1;
      }
      await sleep(attempt * 1000); // then the same request again, with the same key
    }
  }
  if (result.code !== 0) {
    console.error(`not placed: code ${result.code} (${CODES[result.code]})`);
    return 1;
  }
  // Keep the id: it names the call in the status API, the callback's X-C2C-Call-Id header and
  // c2c's logs.
  console.log(result.callId);
  return 0;
}

// Run as a script (not when imported as a module).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
