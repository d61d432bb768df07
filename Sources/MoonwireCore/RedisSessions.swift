// Sessions kept in Redis, so that every node of a cluster finds a session whichever node made
// it. A session is one string key, `moonwire:session:<id>`, holding its data (SharedValueCodec)
// with the idle timeout as its TTL: finding it (GETEX ... PX) slides the expiry, and Redis drops
// it when the timeout passes. Saving writes only a key that still exists (XX), so a session
// destroyed on another node while a request ran is not brought back.

/// Commands on a loop's RedisClient for the sessions of a cluster.
public enum RedisSessions {
    /// The prefix of the sessions' keys in Redis.
    public static let keyPrefix = "moonwire:session:"

    /// The session `id` names with its expiry moved `timeout` seconds ahead; nil when Redis
    /// has none (never made, expired, destroyed, or data this version cannot read).
    public static func find(
        _ id: String, timeout: Double, on client: RedisClient,
        completion: @escaping (Result<SessionStore.Session?, RedisClientError>) -> Void
    ) {
        client.call(command("GETEX", id, expiring: timeout)) { result in
            completion(result.flatMap { reply -> Result<SessionStore.Session?, RedisClientError> in
                switch reply {
                case .null: return .success(nil)
                case .bulk(let bytes): return .success(SharedValueCodec.decode(bytes).map { SessionStore.Session(id: id, data: $0) })
                default: return .failure(unexpected(reply))
                }
            })
        }
    }

    /// Starts a session with empty data under `id`; nil when the id is taken.
    public static func create(
        _ id: String, timeout: Double, on client: RedisClient,
        completion: @escaping (Result<SessionStore.Session?, RedisClientError>) -> Void
    ) {
        let empty = SharedValue.table([:])
        client.call(command("SET", id, SharedValueCodec.encode(empty), expiring: timeout, "NX")) { result in
            completion(result.flatMap { reply -> Result<SessionStore.Session?, RedisClientError> in
                switch reply {
                case .status: return .success(SessionStore.Session(id: id, data: empty))
                case .null: return .success(nil)
                default: return .failure(unexpected(reply))
                }
            })
        }
    }

    /// Replaces a session's data and slides its expiry, when it still exists. The reply is not
    /// waited for: the request has been answered.
    public static func save(_ id: String, data: SharedValue, timeout: Double, on client: RedisClient) {
        client.call(command("SET", id, SharedValueCodec.encode(data), expiring: timeout, "XX")) { _ in }
    }

    /// Ends a session. Sent at once, ahead of anything the loop sends Redis later.
    public static func destroy(_ id: String, on client: RedisClient) {
        client.call(command("DEL", id)) { _ in }
    }

    /// Moves a session to the id `fresh` with `data` (against fixation): the old key is
    /// deleted and the new one made, in that order on the loop's connection.
    public static func regenerate(_ id: String, to fresh: String, data: SharedValue, timeout: Double, on client: RedisClient) {
        destroy(id, on: client)
        client.call(command("SET", fresh, SharedValueCodec.encode(data), expiring: timeout, "NX")) { _ in }
    }

    /// `name key [value] [PX ms] [flag]` with the session's key.
    private static func command(_ name: String, _ id: String, _ value: [UInt8]? = nil, expiring timeout: Double? = nil, _ flag: String? = nil)
        -> [[UInt8]]
    {
        var arguments = [Array(name.utf8), Array((keyPrefix + id).utf8)]
        if let value { arguments.append(value) }
        if let timeout { arguments += [Array("PX".utf8), Array("\(max(1, Int64((min(timeout, 1e9) * 1000).rounded(.up))))".utf8)] }
        if let flag { arguments.append(Array(flag.utf8)) }
        return arguments
    }

    private static func unexpected(_ reply: RedisReply) -> RedisClientError {
        if case .error(let message) = reply { return RedisClientError(description: message) }
        return RedisClientError(description: "an unexpected reply for a session: \(reply)")
    }
}
