#!/usr/bin/env node
// Follow a c2c call until it has ended (Node.js 18+, built-in fetch only).
//
//   export C2C_URL=https://c2c.example.com C2C_API_KEY=...
//   node poll_call.mjs CALL_ID
//
// Prints each new state on stderr and, once the call has ended, the call as JSON on stdout;
// exits 0 then, 1 on an error or when C2C_POLL_TIMEOUT seconds (default 3 hours) have passed.
// C2C_POLL_INTERVAL sets the seconds between two requests (default 5).
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export class C2CError extends Error {
  constructor(status, problem) {
    // A problem document: {type, title, status, detail}.
    super(`c2c answered ${status}: ${problem?.detail ?? problem?.title ?? ''}`);
    this.status = status;
    this.problem = problem;
  }
}

// The call as c2c has it now. Throws C2CError: 404 for a call id that is not this account's,
// 401/403 for a bad or disabled key, 503 while c2c's store is unreachable.
export async function getCall(baseUrl, apiKey, callId, { timeoutMs = 10000 } = {}) {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/calls/${encodeURIComponent(callId)}`;
  const response = await fetch(url, {
    // The key goes in a header, never in the URL (URLs are logged).
    headers: { Authorization: `Bearer ${apiKey}`, Accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (response.status !== 200) {
    const error = new C2CError(response.status, await response.json().catch(() => null));
    error.retryAfter = Number(response.headers.get('retry-after')) || 0;
    throw error;
  }
  return response.json();
}

// Poll until the call's state is "ended"; resolves to the call. Transient trouble (no answer,
// a 5xx) is retried until the timeout; a 4xx is not (the key or the id is wrong).
export async function waitUntilEnded(baseUrl, apiKey, callId,
  { intervalMs = 5000, timeoutMs = 3 * 3600 * 1000, onState = () => {} } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastState = null;
  for (;;) {
    let waitMs = intervalMs;
    try {
      const call = await getCall(baseUrl, apiKey, callId);
      if (call.state !== lastState) onState(call.state);
      lastState = call.state;
      if (call.state === 'ended') return call;
    } catch (error) {
      if (error instanceof C2CError && error.status < 500) throw error;
      // 503: c2c's store is unreachable for a moment; it says when to come back. Anything
      // else here is no answer this time (network down, timeout): try again.
      waitMs = Math.max(intervalMs, (error.retryAfter ?? 0) * 1000);
    }
    if (Date.now() + waitMs > deadline) {
      throw new Error(`call ${callId} has not ended within ${timeoutMs / 1000} s`);
    }
    await sleep(waitMs);
  }
}

const REASONS = { 0: 'failed', 1: 'hung up', 3: 'ring timeout', 5: 'busy', 8: 'congestion' };

async function main(argv) {
  if (argv.length !== 1) {
    console.error('usage: node poll_call.mjs CALL_ID');
    return 2;
  }
  if (!process.env.C2C_URL || !process.env.C2C_API_KEY) {
    console.error('set C2C_URL and C2C_API_KEY');
    return 2;
  }
  let call;
  try {
    call = await waitUntilEnded(process.env.C2C_URL, process.env.C2C_API_KEY, argv[0], {
      intervalMs: Number(process.env.C2C_POLL_INTERVAL ?? 5) * 1000,
      timeoutMs: Number(process.env.C2C_POLL_TIMEOUT ?? 3 * 3600) * 1000,
      onState: (state) => console.error(`state: ${state}`),
    });
  } catch (error) {
    console.error(error.message);
    return 1;
  }
  if (call.answered) {
    // minutes: whole minutes connected, rounded up; what the account was debited.
    console.error(`ended: answered, ${call.minutes} minute(s)`);
  } else {
    console.error(`ended: not answered (${REASONS[call.reason] ?? call.reason})`);
  }
  console.log(JSON.stringify(call));
  return 0;
}

// Run as a script (not when imported as a module).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
