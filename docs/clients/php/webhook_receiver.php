<?php
// Receive c2c's callbacks and progress webhooks, checking their signatures (PHP 7.1+).
//
//   export C2C_WEBHOOK_SECRET=...   # the account's webhook secret (`c2c keys create` prints it)
//   php -S 127.0.0.1:8000 webhook_receiver.php     # or as a page of your web server
//
// Both kinds of request carry X-C2C-Timestamp and X-C2C-Signature: v1=<hex>:
// - the final callback, GET <your callback_url>&minutes=..&answered=..&reason=.., is signed over
//   the request target (path and query exactly as on the request line);
// - a progress webhook (status_callback_url), POST with a JSON body {call_id, event, at,
//   sequence}, is signed over the raw body.
// Genuine requests are answered 200 and printed as JSON lines on stdout; anything else gets 403.

const C2C_TOLERANCE_SECONDS = 300; // refuse requests signed more than 5 minutes from our clock (replays)

/**
 * True if $signature (X-C2C-Signature) is c2c's for $signed at $timestamp (X-C2C-Timestamp), and
 * that timestamp is within the tolerance of $now.
 *
 * $signed: the raw request target of a GET callback ($_SERVER['REQUEST_URI']), the raw body of a
 * POST webhook (file_get_contents('php://input')), as received: never rebuilt from $_GET or
 * re-encoded JSON.
 */
function c2c_signature_ok(string $secret, ?string $timestamp, string $signed, ?string $signature,
                          ?int $now = null): bool
{
    if ($timestamp === null || $signature === null || !preg_match('/^[0-9]{1,12}$/D', $timestamp)) {
        return false;
    }
    if (abs(($now ?? time()) - (int) $timestamp) > C2C_TOLERANCE_SECONDS) {
        return false; // stale, or from the future: possibly a replay
    }
    $expected = 'v1=' . hash_hmac('sha256', $timestamp . '.' . $signed, $secret);
    // While a secret is being replaced the header may hold several comma-separated values; any
    // may match. hash_equals takes the same time wherever the first difference is.
    foreach (explode(',', $signature) as $candidate) {
        if (hash_equals($expected, trim($candidate))) {
            return true;
        }
    }
    return false;
}

function c2c_answer(int $status, string $body): void
{
    http_response_code($status);
    header('Content-Type: text/plain');
    echo $body;
}

function c2c_receive(string $secret): void
{
    $method = $_SERVER['REQUEST_METHOD'];
    if ($method === 'GET') {
        $signed = $_SERVER['REQUEST_URI']; // the request target as on the request line
    } elseif ($method === 'POST') {
        $signed = file_get_contents('php://input'); // the raw body, before any json_decode
    } else {
        c2c_answer(405, 'GET or POST');
        return;
    }
    if (!c2c_signature_ok($secret, $_SERVER['HTTP_X_C2C_TIMESTAMP'] ?? null, $signed,
                          $_SERVER['HTTP_X_C2C_SIGNATURE'] ?? null)) {
        c2c_answer(403, 'bad signature');
        return;
    }
    if ($method === 'GET') {
        // Delivery is at least once: a retry repeats X-C2C-Call-Id. Record the call id with
        // your update (one transaction), and answer a repeat 200 without acting twice.
        $record = [
            'kind' => 'callback', 'call_id' => $_SERVER['HTTP_X_C2C_CALL_ID'] ?? null,
            'answered' => $_GET['answered'] ?? null, 'minutes' => $_GET['minutes'] ?? null,
            'reason' => $_GET['reason'] ?? null,
        ];
    } else {
        $event = json_decode($signed, true);
        if (!is_array($event)) {
            c2c_answer(400, 'bad request');
            return;
        }
        // At least once, in order per call: de-duplicate on the delivery id (or call_id and
        // sequence); a sequence lower than one already seen is a repeat.
        $record = [
            'kind' => 'progress', 'call_id' => $event['call_id'] ?? null,
            'event' => $event['event'] ?? null, 'sequence' => $event['sequence'] ?? null,
            'at' => $event['at'] ?? null, 'delivery_id' => $_SERVER['HTTP_X_C2C_DELIVERY_ID'] ?? null,
        ];
    }
    file_put_contents('php://stdout', json_encode($record) . "\n"); // your work here; answer quickly
    c2c_answer(200, 'ok');
}

$secret = getenv('C2C_WEBHOOK_SECRET');
if ($secret === false || $secret === '') {
    error_log("set C2C_WEBHOOK_SECRET to the account's webhook secret");
    c2c_answer(500, 'not configured');
} else {
    c2c_receive($secret);
}
