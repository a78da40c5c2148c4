<?php
// Place a click-to-call call with c2c (PHP 7.1+, file_get_contents only: no curl needed).
//
//   export C2C_URL=https://c2c.example.com C2C_API_KEY=...   # never put the key in code or logs
//   php place_call.php 1 2125550123 1 2125550199 [https://example.com/c2c/callback]
//
// Arguments: caller country code, caller number, callee country code, callee number (national
// numbers, digits only), and optionally the callback URL. Prints the call's id and exits 0 when
// the call was accepted; otherwise prints the code and its meaning and exits 1.
// C2C_IDEMPOTENCY_KEY names the request (default: a new random key).

const C2C_CODES = [
    0 => 'accepted: the call will be attempted shortly',
    1 => 'invalid api_key',
    2 => 'no call credits',
    3 => 'a phone number is on the Do-Not-Call list',
    4 => 'badly formed request',
    5 => 'api_key is disabled',
    6 => 'flood protection: a number was used too recently; retry later',
    7 => 'caller area code not supported',
    8 => 'caller country code not supported',
    9 => 'callee area code not supported',
    10 => 'callee country code not supported',
    11 => 'temporarily unable to place calls; retry later',
];

/**
 * Ask c2c to connect two phones. Returns [code, callId]; callId is null unless code is 0.
 * Throws RuntimeException when no answer came (code 0), or one that is not c2c's (code: its
 * HTTP status).
 */
function c2c_place_call(string $baseUrl, string $apiKey, array $call, ?string $idempotencyKey = null,
                        int $timeout = 15): array
{
    // A POST form body keeps the api_key out of URLs, which end up in proxy and server logs
    // (and in PHP's own warning when a request fails). A GET with the same parameters in the
    // query string works too.
    $form = http_build_query([
        'api_key' => $apiKey,
        'caller_country_code' => $call['caller_country_code'],
        'caller_phone_number' => $call['caller_phone_number'],
        'callee_country_code' => $call['callee_country_code'],
        'callee_phone_number' => $call['callee_phone_number'],
        'callback_url' => $call['callback_url'] ?? '',
        'secret' => $call['secret'] ?? '', // echoed in the callback, e.g. your own order id
    ]);
    $headers = "Content-Type: application/x-www-form-urlencoded\r\n";
    if ($idempotencyKey !== null) {
        // The same key with the same parameters, within 24 hours, answers what the first
        // request answered and places nothing: a retry after a timeout never rings twice.
        $headers .= "Idempotency-Key: $idempotencyKey\r\n";
    }
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => $headers,
        'content' => $form,
        'timeout' => $timeout,
        'ignore_errors' => true, // the body whatever the HTTP status: we check the status below
        'follow_location' => 0, // a redirect would turn the POST into a GET without the form
    ]]);
    $body = @file_get_contents(rtrim($baseUrl, '/') . '/api/clicktocall/', false, $context);
    if ($body === false) {
        throw new RuntimeException('nothing answered (connection refused or timed out)');
    }
    $headers = function_exists('http_get_last_response_headers')
        ? http_get_last_response_headers() // PHP 8.4+
        : $http_response_header;
    $status = (int) (explode(' ', $headers[0] ?? '')[1] ?? 0);
    // HTTP 200 for EVERY code: the code is the body, as bare digits ('0' means accepted). Compare
    // strings strictly: file_get_contents() gives false when it gets no answer, and in PHP
    // false == 0 is true, so `if ($body == 0)` would read a failure as success. Anything but a
    // 200 came from something in between (a proxy's 502, a URL too long).
    if ($status !== 200 || !preg_match('/^[0-9]{1,2}$/D', $body) || !isset(C2C_CODES[(int) $body])) {
        throw new RuntimeException("not a c2c answer: HTTP $status", $status);
    }
    $callId = null;
    foreach ($headers as $line) {
        if (preg_match('/^X-C2C-Call-Id:\s*(\S+)/i', $line, $match)) {
            $callId = $match[1]; // only with code 0
        }
    }
    return [(int) $body, $callId];
}

function c2c_place_call_main(array $argv): int
{
    if (count($argv) !== 5 && count($argv) !== 6) {
        fwrite(STDERR, "usage: php place_call.php CALLER_CC CALLER_NUMBER CALLEE_CC CALLEE_NUMBER [CALLBACK_URL]\n");
        return 2;
    }
    if (!getenv('C2C_URL') || !getenv('C2C_API_KEY')) {
        fwrite(STDERR, "set C2C_URL and C2C_API_KEY\n");
        return 2;
    }
    // One key for every try of this one call; a new call gets a new key.
    $key = getenv('C2C_IDEMPOTENCY_KEY') ?: bin2hex(random_bytes(16));
    for ($attempt = 1; ; $attempt++) {
        try {
            [$code, $callId] = c2c_place_call((string) getenv('C2C_URL'), (string) getenv('C2C_API_KEY'), [
                'caller_country_code' => $argv[1],
                'caller_phone_number' => $argv[2],
                'callee_country_code' => $argv[3],
                'callee_phone_number' => $argv[4],
                'callback_url' => $argv[5] ?? '',
            ], $key);
            break;
        } catch (RuntimeException $e) {
            // No answer (code 0), or not c2c's: a proxy's 5xx may pass, a 404 won't.
            if ($attempt === 3 || ($e->getCode() !== 0 && $e->getCode() < 500)) {
                fwrite(STDERR, 'no answer from c2c: ' . $e->getMessage() . "\n");
                return 1;
            }
            sleep($attempt); // then the same request again, with the same key
        }
    }
    if ($code !== 0) {
        fwrite(STDERR, "not placed: code $code (" . C2C_CODES[$code] . ")\n");
        return 1;
    }
    // Keep the id: it names the call in the status API, the callback's X-C2C-Call-Id header and
    // c2c's logs.
    echo $callId, "\n";
    return 0;
}

// Run as a script (not when included).
if (PHP_SAPI === 'cli' && isset($argv[0]) && realpath($argv[0]) === __FILE__) {
    exit(c2c_place_call_main($argv));
}
