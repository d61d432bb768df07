import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// Where an exchange's state machine is brought before an event is tried.
enum ExchangeStage: CaseIterable {
    case idle, receiving, answering, closing
}

/// Machines brought to a stage, and the words the exchange tests compare actions and states
/// by, shared by the test cases of HTTPExchangeStateMachine.
protocol ExchangeMachineTesting {}

extension ExchangeMachineTesting {
    typealias Machine = HTTPExchangeStateMachine
    typealias Stage = ExchangeStage

    static var maxBodySize: Int { 8 }

    func head(_ uri: String = "/a") -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .POST, uri: uri)
    }

    /// A machine brought to `stage` through the events that lead there.
    func machine(_ stage: Stage, http1: Bool = true) -> Machine {
        var machine = Machine(pipelines: http1, maxBodySize: Self.maxBodySize)
        guard stage != .idle else { return machine }
        if stage == .closing {
            _ = machine.failed(status: 400, message: "bad")
            return machine
        }
        XCTAssertEqual(describe(machine.partReceived(.head(head()))), "receiveHead POST /a")
        machine.headAccepted(head(), body: ByteBuffer())
        guard stage == .answering else { return machine }
        XCTAssertEqual(describe(machine.partReceived(.end(nil))), "dispatch /a ")
        machine.requestDispatched()
        return machine
    }

    func describe(_ action: Machine.Action) -> String {
        switch action {
        case .none: return "none"
        case .receiveHead(let head): return "receiveHead \(head.method) \(head.uri)"
        case .dispatch(let head, let body): return "dispatch \(head.uri) \(String(buffer: body))"
        case .streamChunk(let chunk): return "streamChunk \(String(buffer: chunk))"
        case .streamEnd: return "streamEnd"
        case .answerError(let status, let message): return "answerError \(status) \(message)"
        case .reportAndClose(let status, let message): return "reportAndClose \(status) \(message)"
        case .close: return "close"
        case .closeOnError(let error): return "closeOnError \(error)"
        }
    }

    func describe(_ state: Machine.State) -> String {
        switch state {
        case .idle: return "idle"
        case .receiving(let head, let body): return "receiving \(head.uri) \(String(buffer: body))"
        case .answering: return "answering"
        case .streaming(let received, let limit): return "streaming \(received)/\(limit)"
        case .closing: return "closing"
        }
    }

    func body(_ text: String) -> HTTPServerRequestPart {
        .body(ByteBuffer(string: text))
    }
}
