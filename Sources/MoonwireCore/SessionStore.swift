// Server sessions: ids handed to clients in a cookie, each with the data a script keeps for
// it. They live in Swift behind one lock, shared by every event loop, so they outlive script
// reloads (as moonwire.shared does). Expiry slides: a session ends `timeout` seconds after its
// last use; `expire()` collects the ended ones for OnSessionEnd. Memory is bounded twice: a
// cap on the number of sessions (creating one more fails, so a flood of cookieless clients
// cannot grow the store without end) and a cap on each session's data (a save over it fails
// and the previous data stays).
import NIOConcurrencyHelpers
import NIOCore

/// The sessions of one server.
public final class SessionStore: Sendable {
    /// A session as its events see it.
    public struct Session: Sendable, Equatable {
        public var id: String
        public var data: SharedValue

        /// A session held elsewhere (in Redis, with a cluster), as events see it.
        public init(id: String, data: SharedValue) {
            self.id = id
            self.data = data
        }
    }

    /// Why a session could not be created or saved.
    public enum Refusal: Error, Sendable, Equatable {
        /// The store holds `maxSessions` live sessions.
        case full
        /// The id is in use (a script-chosen id that another session has).
        case idTaken
        /// The data is larger than `maxDataBytes`.
        case tooLarge
        /// The session ended (destroyed or expired) while the request ran.
        case gone
    }

    private struct Entry {
        var data: SharedValue
        var expires: NIODeadline
    }

    /// The most sessions alive at once (default 100,000).
    public let maxSessions: Int
    /// The largest data a session keeps, measured by `SessionStore.size(of:)` (default 64 KiB).
    public let maxDataBytes: Int
    private let clock: @Sendable () -> NIODeadline
    private let entries = NIOLockedValueBox([String: Entry]())

    /// Creates an empty store; `clock` is for tests that move time themselves.
    public init(maxSessions: Int = 100_000, maxDataBytes: Int = 64 * 1024, clock: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.maxSessions = maxSessions
        self.maxDataBytes = maxDataBytes
        self.clock = clock
    }

    /// A new random id: 128 bits from the system's CSPRNG, as 32 lowercase hex digits.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let words = [generator.next() as UInt64, generator.next() as UInt64]
        return words.withUnsafeBytes { Hexadecimal.string($0) }
    }

    /// Whether a script-chosen id (OnCreateSession's) may be used: 16 to 128 printable ASCII
    /// characters that a cookie value may hold (no space, quote, comma, semicolon, backslash).
    public static func isAcceptableID(_ id: String) -> Bool {
        let bytes = id.utf8
        guard (16...128).contains(bytes.count) else { return false }
        return bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: "\\") }
    }

    /// Starts a session with empty data under `id` (a new random one when nil).
    public func create(id: String? = nil, timeout: Double) -> Result<Session, Refusal> {
        let now = clock()
        let id = id ?? Self.newID()
        return entries.withLockedValue { entries in
            guard entries[id] == nil else { return .failure(.idTaken) }
            guard entries.count < maxSessions else { return .failure(.full) }
            entries[id] = Entry(data: .table([:]), expires: now + Self.duration(timeout))
            return .success(Session(id: id, data: .table([:])))
        }
    }

    /// The session `id` names when it is alive, its expiry moved `timeout` seconds ahead.
    public func touch(_ id: String, timeout: Double) -> Session? {
        let now = clock()
        return entries.withLockedValue { entries in
            guard var entry = entries[id], entry.expires > now else { return nil }
            entry.expires = now + Self.duration(timeout)
            entries[id] = entry
            return Session(id: id, data: entry.data)
        }
    }

    /// Replaces a live session's data.
    public func save(_ id: String, data: SharedValue) -> Result<Void, Refusal> {
        guard Self.size(of: data, limit: maxDataBytes) <= maxDataBytes else { return .failure(.tooLarge) }
        return entries.withLockedValue { entries in
            guard entries[id] != nil else { return .failure(.gone) }
            entries[id]!.data = data
            return .success(())
        }
    }

    /// Moves a live session to a new random id (against fixation); the old id stops working.
    public func regenerate(_ id: String, timeout: Double) -> Session? {
        let now = clock()
        let fresh = Self.newID()
        return entries.withLockedValue { entries in
            guard let entry = entries.removeValue(forKey: id), entry.expires > now else { return nil }
            entries[fresh] = Entry(data: entry.data, expires: now + Self.duration(timeout))
            return Session(id: fresh, data: entry.data)
        }
    }

    /// Ends a session; what it held, or nil when it was not alive.
    public func destroy(_ id: String) -> Session? {
        entries.withLockedValue { entries in
            entries.removeValue(forKey: id).map { Session(id: id, data: $0.data) }
        }
    }

    /// Removes the sessions whose time ran out and returns them (for OnSessionEnd).
    public func expire() -> [Session] {
        let now = clock()
        return entries.withLockedValue { entries in
            var ended = [Session]()
            for (id, entry) in entries where entry.expires <= now { ended.append(Session(id: id, data: entry.data)) }
            for session in ended { entries[session.id] = nil }
            return ended
        }
    }

    /// How many sessions the store holds (ended ones included until `expire`).
    public var count: Int { entries.withLockedValue { $0.count } }

    /// An estimate of a value's size in bytes: string bytes plus 8 per number, boolean, key
    /// and table; it stops counting once past `limit`.
    public static func size(of value: SharedValue, limit: Int = .max) -> Int {
        switch value {
        case .string(let bytes): return bytes.count + 8
        case .integer, .number, .boolean: return 8
        case .table(let fields):
            var total = 8
            for (key, element) in fields {
                if case .string(let bytes) = key { total += bytes.count }
                total += 8 + size(of: element, limit: limit)
                if total > limit { return total }
            }
            return total
        }
    }

    private static func duration(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
    }
}
