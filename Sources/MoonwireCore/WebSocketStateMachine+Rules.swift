// What every WebSocket of an event loop shares, so that an idle connection's state machine
// holds a reference instead of its own copy.
import NIOCore

extension WebSocketStateMachine {
    /// What every connection of an event loop shares: the settings and the server's budget of
    /// partial messages, kept once per loop (ConnectionEnvironment) instead of a copy in each
    /// connection's machine, which an idle connection would hold for nothing.
    final class Rules {
        let settings: WebSocketSettings
        let budget: WebSocketMessageBudget
        /// Where new messages' buffers come from (NIO's, as every channel's of the server).
        let allocator = ByteBufferAllocator()

        init(settings: WebSocketSettings, budget: WebSocketMessageBudget) {
            self.settings = settings
            self.budget = budget
        }
    }
}
