// The bytes all WebSocket connections together may hold in messages that have not arrived
// whole. Each connection is already limited to one message of at most max_message_size, but a
// few thousand connections each holding most of one (a compressed first fragment of 57 KB can
// inflate to 60 MB) would still take all the memory there is; this is the server-wide cap.
// Shared by every event loop: one atomic add when a connection's partial message grows its
// buffer (which doubles, so a few times per message) and one when it lets go; a message that
// arrives in one read never touches it.
import Synchronization

/// A server-wide count of the bytes held by incomplete WebSocket messages, against a limit.
/// Thread-safe and lock-free.
final class WebSocketMessageBudget: Sendable {
    /// The most bytes that may be held at once.
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Bytes held now, by all connections.
    var bytesHeld: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` more from the budget; false (and nothing taken) when that would go over.
    func reserve(_ bytes: Int) -> Bool {
        let total = used.wrappingAdd(bytes, ordering: .relaxed).newValue
        guard total > limit else { return true }
        used.wrappingSubtract(bytes, ordering: .relaxed)
        return false
    }

    /// Gives back `bytes` taken with `reserve`.
    func release(_ bytes: Int) {
        used.wrappingSubtract(bytes, ordering: .relaxed)
    }
}

/// What one partial message holds of the budget: its buffer's capacity. Given back when the
/// share goes, so no way a message can end (delivered, failed, dropped by a close, its
/// connection gone) leaves bytes taken.
final class WebSocketMessageBudgetShare {
    let budget: WebSocketMessageBudget
    private(set) var bytes = 0

    init(budget: WebSocketMessageBudget) {
        self.budget = budget
    }

    deinit {
        if bytes > 0 { budget.release(bytes) }
    }

    /// Makes the share `newBytes`, taking or giving back the difference; false when the budget
    /// cannot cover the growth (the share is then unchanged).
    func resize(to newBytes: Int) -> Bool {
        if newBytes > bytes {
            guard budget.reserve(newBytes - bytes) else { return false }
        } else if newBytes < bytes {
            budget.release(bytes - newBytes)
        }
        bytes = newBytes
        return true
    }
}
