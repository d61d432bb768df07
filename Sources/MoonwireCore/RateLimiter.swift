// Token buckets per key, shared by every event loop (moonwire.limit). They live in Swift behind
// one lock, like SharedStore, so every loop's VM spends from the same buckets and reloads keep
// them. Memory is bounded twice over: a bucket that has refilled to its burst is the same as
// no bucket and is dropped by the next sweep, and the number of keys is capped; at the cap a
// new key is refused (fail closed) until a bucket refills and can be dropped, while the keys
// already held keep their own buckets.
import NIOConcurrencyHelpers
import NIOCore

/// A token bucket per key: `rate` tokens a second, up to `burst`, one token per request.
public final class RateLimiter: Sendable {
    /// What a request gets: admitted, or refused with the seconds until a token is there.
    public enum Decision: Equatable, Sendable {
        case allowed
        case refused(retryAfter: Double)
    }

    private struct Bucket {
        var tokens: Double
        var updated: UInt64
        var rate: Double
        var burst: Double

        /// The tokens at `now`, refilled since the last update and capped at the burst.
        func tokens(at now: UInt64) -> Double {
            min(burst, tokens + Double(now &- updated) / 1e9 * rate)
        }

        /// When (in the clock's nanoseconds) the bucket is full again and may be dropped.
        var full: UInt64 {
            updated + UInt64(max(0, (burst - tokens) / rate * 1e9).rounded(.up))
        }
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        var insertsSinceSweep = 0
        /// The new keys after which the next sweep runs: as many as the last sweep kept (at
        /// least 1024), so sweeping costs O(1) a call.
        var sweepAfter = 1024
        /// At the cap with nothing to drop: no sweep can free a slot before this time.
        var nextFreeSlot: UInt64 = 0
    }

    /// The most keys held at once (default 100,000).
    public let capacity: Int
    private let clock: @Sendable () -> UInt64
    private let state = NIOLockedValueBox(State())

    /// Creates an empty limiter. `clock` gives monotonic nanoseconds (tests drive their own).
    public init(capacity: Int = 100_000, clock: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }) {
        precondition(capacity > 0, "a rate limiter holds at least one key")
        self.capacity = capacity
        self.clock = clock
    }

    /// The number of buckets held now (dropped ones excluded).
    public var count: Int { state.withLockedValue { $0.buckets.count } }

    /// Takes one token from `key`'s bucket (`rate` tokens a second, at most `burst`; a new
    /// key starts full). The rate and burst of the latest call apply to the key.
    public func take(_ key: String, rate: Double, burst: Double) -> Decision {
        precondition(rate > 0 && rate.isFinite && burst >= 1 && burst.isFinite, "rate > 0 and burst >= 1")
        return state.withLockedValue { state in
            // Read under the lock, so no call sees a bucket updated later than its own `now`.
            let now = clock()
            var bucket: Bucket
            if let held = state.buckets[key] {
                bucket = held
                bucket.tokens = bucket.tokens(at: now)
            } else {
                if state.insertsSinceSweep >= state.sweepAfter { Self.sweep(&state, now: now) }
                if state.buckets.count >= capacity {
                    guard now >= state.nextFreeSlot else { return .refused(retryAfter: Double(state.nextFreeSlot - now) / 1e9) }
                    Self.sweep(&state, now: now)
                    if state.buckets.count >= capacity {
                        state.nextFreeSlot = state.buckets.values.lazy.map(\.full).min() ?? now
                        return .refused(retryAfter: Double(state.nextFreeSlot &- now) / 1e9)
                    }
                }
                state.insertsSinceSweep += 1
                bucket = Bucket(tokens: burst, updated: now, rate: rate, burst: burst)
            }
            bucket.updated = now
            bucket.rate = rate
            bucket.burst = burst
            bucket.tokens = min(bucket.tokens, burst)
            guard bucket.tokens >= 1 else {
                state.buckets[key] = bucket
                return .refused(retryAfter: (1 - bucket.tokens) / rate)
            }
            bucket.tokens -= 1
            state.buckets[key] = bucket
            return .allowed
        }
    }

    /// Drops every bucket that has refilled to its burst: taking from it again would start it
    /// full anyway.
    private static func sweep(_ state: inout State, now: UInt64) {
        state.buckets = state.buckets.filter { $0.value.full > now }
        state.insertsSinceSweep = 0
        state.sweepAfter = max(1024, state.buckets.count)
    }
}
