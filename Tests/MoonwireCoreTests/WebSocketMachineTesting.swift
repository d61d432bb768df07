import NIOCore
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// What the WebSocket state machine tests share: a machine in a phase with small limits, its
/// actions as text, and frames fed through a parser as the handler feeds them.
protocol WebSocketMachineTesting {}

extension WebSocketMachineTesting {
    typealias Machine = WebSocketStateMachine

    var start: NIODeadline { .uptimeNanoseconds(1_000_000_000) }

    func later(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    /// A machine in `phase`, with messages of up to 16 bytes, a send queue of 10 payload bytes
    /// (and the overhead of four frames), a heartbeat every 30 seconds answered within 10,
    /// messages due within 5 seconds, a budget of partial messages of 1 MiB unless given, and
    /// `change` made to those settings.
    func machine(
        _ phase: Machine.Phase = .open, deflate: PerMessageDeflate? = nil,
        budget: WebSocketMessageBudget = WebSocketMessageBudget(limit: 1 << 20),
        _ change: (inout WebSocketSettings) -> Void = { _ in }
    ) -> Machine {
        var settings = WebSocketSettings()
        settings.maxMessageSize = 16
        settings.sendQueueLimit = 10 + 4 * WebSocketSendQueue.messageOverhead
        settings.heartbeatInterval = 30
        settings.heartbeatTimeout = 10
        settings.messageTimeout = 5
        change(&settings)
        var machine = Machine(settings: settings, deflate: deflate, budget: budget, now: start)
        switch phase {
        case .open: break
        case .closeSent: machine.closeFrameSent()
        case .ended: XCTAssertTrue(machine.reportClose())
        case .closed:
            machine.closeFrameSent()
            XCTAssertTrue(machine.reportClose())
        }
        XCTAssertEqual(machine.phase, phase)
        return machine
    }

    func describe(_ action: Machine.Action) -> String {
        func text(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }
        func kind(_ isText: Bool) -> String { isText ? "text" : "binary" }
        switch action {
        case .none: return "none"
        case .sendPong(let payload): return "pong \(text(payload))"
        case .deliverMessage(let message, let isText): return "message \(kind(isText)) \(text(message))"
        case .deliverFragment(let fragment, let isText, let isFinal):
            return "fragment \(kind(isText)) \(text(fragment))\(isFinal ? " final" : "")"
        case .deliverFragmentAndMessage(let fragment, let message, let isText):
            return "fragment \(kind(isText)) \(text(fragment)) final, message \(text(message))"
        case .closeReceived(let code, let reason, let reply):
            let answer = reply.map { "reply \($0.code.map(String.init) ?? "empty")" } ?? "no reply"
            return "closeReceived \(code) '\(reason)' \(answer)"
        case .fail(let code, let message): return "fail \(code) \(message)"
        case .closeTCP: return "closeTCP"
        case .connectionLost: return "connectionLost"
        }
    }

    /// Feeds the frame's bytes through a parser, as the handler does; what the first event
    /// that is not `none` made the machine do (the handler stops at a failure), or "none".
    func receive(_ machine: inout Machine, _ frame: WebSocketFrame, now: NIODeadline? = nil) -> String {
        receive(&machine, pieces: [frame.wire], now: now).last ?? "none"
    }

    /// Feeds `pieces` one after another through one parser; what each made the machine do (the
    /// first action that is not `none`, or "none"), until an action that is not `none`.
    func receive(_ machine: inout Machine, pieces: [ByteBuffer], now: NIODeadline? = nil) -> [String] {
        var parser = WebSocketFrameParser()
        var results: [String] = []
        for piece in pieces {
            var bytes = piece
            var result = "none"
            while result == "none", let event = parser.next(&bytes) {
                result = describe(machine.received(event, now: now ?? start))
            }
            results.append(result)
            if result != "none" { break }
        }
        return results
    }
}
