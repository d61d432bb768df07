// The token bucket of RateLimiter, kept in Redis so that every node of a cluster spends from the
// same bucket. One EVAL runs a small Redis script that reads the bucket, refills it by the time
// passed (Redis' own TIME, so the nodes' clocks do not matter), takes a token or not, writes it
// back and lets the key expire when the bucket would be full again: an idle bucket is the same
// as none, so Redis forgets it. The script runs atomically, so two nodes cannot both spend the
// last token.

/// Takes tokens from buckets in Redis (`moonwire:limit:<key>`), on a loop's RedisClient.
public enum RedisRateLimit {
    /// The prefix of the buckets' keys in Redis.
    public static let keyPrefix = "moonwire:limit:"

    /// The same bucket as RateLimiter's: `rate` tokens a second up to `burst`, a new key full, a
    /// refusal spends nothing. Tokens and times are kept as strings, since Redis turns the
    /// numbers a script returns into integers.
    static let script = """
        local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
        local tokens = burst
        if held[1] and held[2] then
          tokens = math.min(burst, tonumber(held[1]) + math.max(0, now - tonumber(held[2])) / 1e6 * rate)
        end
        local allowed, retry = 0, 0
        if tokens >= 1 then tokens = tokens - 1; allowed = 1 else retry = (1 - tokens) / rate end
        redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.0f', now))
        redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) / rate * 1000)))
        return {allowed, string.format('%.17g', retry)}
        """

    /// Takes one token from `key`'s bucket; `completion` runs on the client's loop with the
    /// decision, or with why Redis gave none (unreachable, or an error reply). Returns what
    /// abandons the call.
    @discardableResult
    public static func take(
        _ key: String, rate: Double, burst: Double, on client: RedisClient,
        completion: @escaping (Result<RateLimiter.Decision, RedisClientError>) -> Void
    ) -> () -> Void {
        let arguments = ["EVAL", script, "1", keyPrefix + key, "\(rate)", "\(burst)"].map { Array($0.utf8) }
        return client.call(arguments) { result in
            completion(result.flatMap(decision))
        }
    }

    /// The script's reply `{allowed, retry}` as a decision.
    static func decision(_ reply: RedisReply) -> Result<RateLimiter.Decision, RedisClientError> {
        if case .error(let message) = reply { return .failure(RedisClientError(description: message)) }
        if case .array(let elements) = reply, elements.count == 2, case .integer(let allowed) = elements[0],
            case .bulk(let retry) = elements[1]
        {
            if allowed == 1 { return .success(.allowed) }
            if allowed == 0, let seconds = Double(String(decoding: retry, as: UTF8.self)), seconds.isFinite, seconds >= 0 {
                return .success(.refused(retryAfter: seconds))
            }
        }
        return .failure(RedisClientError(description: "an unexpected reply to the rate limit's script: \(reply)"))
    }
}
