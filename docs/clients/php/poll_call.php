<?php
// Follow a c2c call until it has ended (PHP 7.1+, file_get_contents only: no curl needed).
//
//   export C2C_URL=https://c2c.example.com C2C_API_KEY=...
//   php poll_call.php CALL_ID
//
// Prints each new state on stderr and, once the call has ended, the call as JSON on stdout;
// exits 0 then, 1 on an error or when C2C_POLL_TIMEOUT seconds (default 3 hours) have passed.
// C2C_POLL_INTERVAL sets the seconds between two requests (default 5).

class C2CProblem extends RuntimeException
{
    public $status;       // the HTTP status c2c answered
    public $retryAfter;   // seconds, from a 503's Retry-After

    public function __construct(int $status, ?array $problem, int $retryAfter)
    {
        // A problem document: {type, title, status, detail}.
        parent::__construct("c2c answered $status: " . ($problem['detail'] ?? $problem['title'] ?? ''));
        $this->status = $status;
        $this->retryAfter = $retryAfter;
    }
}

/**
 * The call as c2c has it now. Throws C2CProblem: 404 for a call id that is not this account's,
 * 401/403 for a bad or disabled key, 503 while c2c's store is unreachable; RuntimeException when
 * no answer came.
 */
function c2c_get_call(string $baseUrl, string $apiKey, string $callId, int $timeout = 10): array
{
    $context = stream_context_create(['http' => [
        // The key goes in a header, never in the URL (URLs are logged).
        'header' => "Authorization: Bearer $apiKey\r\nAccept: application/json\r\n",
        'timeout' => $timeout,
        'ignore_errors' => true, // the body whatever the HTTP status: we check the status below
    ]]);
    $body = @file_get_contents(rtrim($baseUrl, '/') . '/api/calls/' . rawurlencode($callId), false, $context);
    if ($body === false) {
        throw new RuntimeException('nothing answered (connection refused or timed out)');
    }
    $headers = function_exists('http_get_last_response_headers')
        ? http_get_last_response_headers() // PHP 8.4+
        : $http_response_header;
    $status = (int) (explode(' ', $headers[0] ?? '')[1] ?? 0);
    $document = json_decode($body, true);
    if ($status !== 200 || !is_array($document)) {
        $retryAfter = 0;
        foreach ($headers as $line) {
            if (preg_match('/^Retry-After:\s*([0-9]+)/i', $line, $match)) {
                $retryAfter = (int) $match[1];
            }
        }
        throw new C2CProblem($status, is_array($document) ? $document : null, $retryAfter);
    }
    return $document;
}

/**
 * Poll until the call's state is "ended"; returns the call. Transient trouble (no answer, a
 * 5xx) is retried until the timeout; a 4xx is not (the key or the id is wrong).
 */
function c2c_wait_until_ended(string $baseUrl, string $apiKey, string $callId, float $interval = 5.0,
                              float $timeout = 3 * 3600, ?callable $onState = null): array
{
    $deadline = microtime(true) + $timeout;
    $lastState = null;
    while (true) {
        $wait = $interval;
        try {
            $call = c2c_get_call($baseUrl, $apiKey, $callId);
            if ($call['state'] !== $lastState && $onState !== null) {
                $onState($call['state']);
            }
            $lastState = $call['state'];
            if ($call['state'] === 'ended') {
                return $call;
            }
        } catch (C2CProblem $e) {
            if ($e->status < 500) {
                throw $e;
            }
            // 503: c2c's store is unreachable for a moment; it says when to come back.
            $wait = max($interval, $e->retryAfter);
        } catch (RuntimeException $e) {
            // No answer this time (network down, timeout): try again.
        }
        if (microtime(true) + $wait > $deadline) {
            throw new RuntimeException("call $callId has not ended within $timeout s");
        }
        usleep((int) ($wait * 1e6));
    }
}

const C2C_REASONS = [0 => 'failed', 1 => 'hung up', 3 => 'ring timeout', 5 => 'busy', 8 => 'congestion'];

function c2c_poll_call_main(array $argv): int
{
    if (count($argv) !== 2) {
        fwrite(STDERR, "usage: php poll_call.php CALL_ID\n");
        return 2;
    }
    if (!getenv('C2C_URL') || !getenv('C2C_API_KEY')) {
        fwrite(STDERR, "set C2C_URL and C2C_API_KEY\n");
        return 2;
    }
    try {
        $call = c2c_wait_until_ended(
            (string) getenv('C2C_URL'), (string) getenv('C2C_API_KEY'), $argv[1],
            (float) (getenv('C2C_POLL_INTERVAL') ?: 5), (float) (getenv('C2C_POLL_TIMEOUT') ?: 3 * 3600),
            function (string $state): void {
                fwrite(STDERR, "state: $state\n");
            }
        );
    } catch (RuntimeException $e) {
        fwrite(STDERR, $e->getMessage() . "\n");
        return 1;
    }
    if ($call['answered']) {
        // minutes: whole minutes connected, rounded up; what the account was debited.
        fwrite(STDERR, "ended: answered, {$call['minutes']} minute(s)\n");
    } else {
        fwrite(STDERR, 'ended: not answered (' . (C2C_REASONS[$call['reason']] ?? $call['reason']) . ")\n");
    }
    echo json_encode($call), "\n";
    return 0;
}

// Run as a script (not when included).
if (PHP_SAPI === 'cli' && isset($argv[0]) && realpath($argv[0]) === __FILE__) {
    exit(c2c_poll_call_main($argv));
}
