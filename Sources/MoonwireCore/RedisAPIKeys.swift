// API keys kept in Redis, so that a key added on one node of a cluster admits a client on every
// other, and a key removed on one is refused by all at once. The keys are one hash,
// `moonwire:apikeys`: a field per key, named by the hexadecimal SHA-256 digest of the key (as
// APIKeyStore keeps only digests, Redis never holds a usable key), holding its info
// (SharedValueCodec). There is no node-local copy: a look-up asks Redis, so a removal counts
// from the next request on, on every node.

/// Commands on a loop's RedisClient for the API keys of a cluster.
public enum RedisAPIKeys {
    /// The hash that holds the keys' digests and infos.
    public static let hashKey = "moonwire:apikeys"

    /// Stores a key (its digest) with its info, or replaces its info. The reply is not waited
    /// for (keys are added while the scripts load); a failure is passed to `failed`.
    public static func add(_ key: APIKeyDigest, info: SharedValue, on client: RedisClient, failed: @escaping (String) -> Void) {
        client.call(command("HSET", key, SharedValueCodec.encode(info))) { result in
            switch result {
            case .success(.integer): break
            case .success(let reply): failed(unexpected(reply).description)
            case .failure(let error): failed(error.description)
            }
        }
    }

    /// Removes a key: true when it was there.
    public static func remove(
        _ key: APIKeyDigest, on client: RedisClient, completion: @escaping (Result<Bool, RedisClientError>) -> Void
    ) {
        client.call(command("HDEL", key)) { result in
            completion(result.flatMap { reply in
                if case .integer(let removed) = reply { return .success(removed > 0) }
                return .failure(unexpected(reply))
            })
        }
    }

    /// The info of a key, or nil when it is not one (or its info is of a format this version
    /// cannot read).
    public static func check(
        _ key: APIKeyDigest, on client: RedisClient, completion: @escaping (Result<SharedValue?, RedisClientError>) -> Void
    ) {
        client.call(command("HGET", key)) { result in
            completion(result.flatMap { reply in
                switch reply {
                case .null: return .success(nil)
                case .bulk(let bytes): return .success(SharedValueCodec.decode(bytes))
                default: return .failure(unexpected(reply))
                }
            })
        }
    }

    /// `name moonwire:apikeys <digest> [value]`.
    private static func command(_ name: String, _ key: APIKeyDigest, _ value: [UInt8]? = nil) -> [[UInt8]] {
        var arguments = [Array(name.utf8), Array(hashKey.utf8), Array(key.hexadecimal.utf8)]
        if let value { arguments.append(value) }
        return arguments
    }

    private static func unexpected(_ reply: RedisReply) -> RedisClientError {
        if case .error(let message) = reply { return RedisClientError(description: message) }
        return RedisClientError(description: "an unexpected reply for an API key: \(reply)")
    }
}
