// The last Lua faults and script reloads, for the live dashboard's table. The metrics count
// them; this keeps what a person wants to read next: when, which kind, and the message. Faults
// and reloads are rare, so one lock over a short list costs nothing on the request path.
import Foundation
import NIOConcurrencyHelpers

/// A bounded, server-wide list of recent faults and reloads, newest last. Thread-safe.
public final class DashboardEventLog: Sendable {
    /// One line of the table.
    public struct Entry: Sendable, Encodable, Equatable {
        /// Milliseconds since 1970.
        public var time: Int64
        /// "fault" or "reload".
        public var type: String
        /// A fault's kind (`error`, `cpu_budget`, `memory`, `timeout`); a reload's
        /// outcome (`ok`, `failed`).
        public var kind: String
        /// The error's first line, or how the reload went.
        public var message: String
        /// Where: the event that failed and its request path; a reload's reason.
        public var detail: String
    }

    /// How many faults and how many reloads are kept: apart, so that a storm of faults does
    /// not push the last reloads out of the table.
    static let faultCapacity = 20
    static let reloadCapacity = 10
    /// How much of a message is kept: the table shows one line.
    static let messageLimit = 300
    private let entries = NIOLockedValueBox<(faults: [Entry], reloads: [Entry])>(([], []))

    init() {}

    /// The entries, oldest first.
    public var recent: [Entry] {
        entries.withLockedValue { $0.faults + $0.reloads }.sorted { $0.time < $1.time }
    }

    /// Notes a fault of a script: its kind, its message, and where it happened.
    func fault(_ kind: LuaScriptError.Kind, message: String, detail: String) {
        add(type: "fault", kind: Self.name(kind), message: message, detail: detail)
    }

    /// Notes a reload: `error` is nil when it succeeded.
    func reload(generation: Int, milliseconds: Double, reason: String, error: String?) {
        let message = error ?? "generation \(generation) in \((milliseconds * 10).rounded() / 10) ms"
        add(type: "reload", kind: error == nil ? "ok" : "failed", message: message, detail: reason)
    }

    /// The label of a kind in moonwire_lua_faults_total.
    static func name(_ kind: LuaScriptError.Kind) -> String {
        switch kind {
        case .error: "error"
        case .cpuBudget: "cpu_budget"
        case .memory: "memory"
        case .timeout: "timeout"
        }
    }

    private func add(type: String, kind: String, message: String, detail: String) {
        let firstLine = message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
        let entry = Entry(
            time: Int64(Date().timeIntervalSince1970 * 1000), type: type, kind: kind,
            message: String(firstLine.prefix(Self.messageLimit)), detail: String(detail.prefix(Self.messageLimit)))
        entries.withLockedValue { entries in
            if type == "reload" {
                if entries.reloads.count == Self.reloadCapacity { entries.reloads.removeFirst() }
                entries.reloads.append(entry)
            } else {
                if entries.faults.count == Self.faultCapacity { entries.faults.removeFirst() }
                entries.faults.append(entry)
            }
        }
    }
}
