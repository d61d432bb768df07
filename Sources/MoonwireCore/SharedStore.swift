// The key-value store every VM shares (moonwire.shared): it lives in Swift so it outlives
// script reloads, and behind one lock because it is reached from every event loop.
import NIOConcurrencyHelpers
import NIOCore

/// A value kept in the shared store: the plain data a script can hand over.
public indirect enum SharedValue: Sendable, Equatable {
    case string([UInt8])
    case integer(Int64)
    case number(Double)
    case boolean(Bool)
    /// A nested table; keys are strings or integers.
    case table([SharedKey: SharedValue])
}

/// A key of a nested shared table.
public enum SharedKey: Sendable, Hashable {
    case string([UInt8])
    case integer(Int64)
}

/// A dictionary with per-key expiry, shared by all VMs of the server.
public final class SharedStore: Sendable {
    private struct Entry {
        var value: SharedValue
        var expires: NIODeadline?
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var writesSinceSweep = 0
    }

    private let state = NIOLockedValueBox(State())

    private let clock: @Sendable () -> NIODeadline

    /// Creates an empty store; its TTLs read `clock` (the server's, which tests move).
    public init(clock: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.clock = clock
    }

    /// The value of a key that has not expired.
    public func get(_ key: String) -> SharedValue? {
        let now = clock()
        return state.withLockedValue { state in
            guard let entry = state.entries[key] else { return nil }
            if let expires = entry.expires, expires <= now {
                state.entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    /// Stores a value (nil deletes), expiring after `ttl` seconds when given.
    public func set(_ key: String, _ value: SharedValue?, ttl: Double? = nil) {
        let now = clock()
        let expires = ttl.map { now + .nanoseconds(Int64($0 * 1e9)) }
        state.withLockedValue { state in
            state.entries[key] = value.map { Entry(value: $0, expires: expires) }
            state.writesSinceSweep += 1
            if state.writesSinceSweep >= 1024 { Self.sweep(&state, now: now) }
        }
    }

    /// Adds `delta` to a number (starting from `initial` when absent or expired) and returns
    /// the new value; nil when the key holds something that is not a number.
    public func increment(_ key: String, by delta: SharedValue, initial: SharedValue = .integer(0)) -> SharedValue? {
        let now = clock()
        return state.withLockedValue { state in
            var entry = state.entries[key] ?? Entry(value: initial, expires: nil)
            if let expires = entry.expires, expires <= now { entry = Entry(value: initial, expires: nil) }
            guard let sum = Self.add(entry.value, delta) else { return nil }
            entry.value = sum
            state.entries[key] = entry
            return sum
        }
    }

    /// Removes a key.
    public func delete(_ key: String) {
        state.withLockedValue { $0.entries[key] = nil }
    }

    private static func add(_ left: SharedValue, _ right: SharedValue) -> SharedValue? {
        switch (left, right) {
        case (.integer(let a), .integer(let b)):
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? .number(Double(a) + Double(b)) : .integer(sum)
        case (.integer(let a), .number(let b)): return .number(Double(a) + b)
        case (.number(let a), .integer(let b)): return .number(a + Double(b))
        case (.number(let a), .number(let b)): return .number(a + b)
        default: return nil
        }
    }

    private static func sweep(_ state: inout State, now: NIODeadline) {
        state.entries = state.entries.filter { $0.value.expires.map { $0 > now } ?? true }
        state.writesSinceSweep = 0
    }
}
