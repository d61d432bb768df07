import NIOCore
import XCTest

@testable import MoonwireCore

/// The event stream format: fields, data split into lines, refusals of injected fields.
final class ServerSentEventTests: XCTestCase {
    private func text(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }

    func testFieldsComeInOrderAndDataIsSplitAtEveryKindOfLineBreak() throws {
        let event = try ServerSentEvent(event: "tick", data: "a\nb\r\nc\rd", id: "42", retry: 1000)
        XCTAssertEqual(text(event.encoded()), "event: tick\nid: 42\nretry: 1000\ndata: a\ndata: b\ndata: c\ndata: d\n\n")
    }

    func testEmptyAndTrailingLinesSurvive() throws {
        XCTAssertEqual(text(try ServerSentEvent(data: "").encoded()), "data: \n\n")
        XCTAssertEqual(text(try ServerSentEvent(data: "x\n").encoded()), "data: x\ndata: \n\n")
        XCTAssertEqual(text(try ServerSentEvent(id: "").encoded()), "id: \n\n")
    }

    func testLineBreaksInEventOrIdAreRefused() {
        XCTAssertThrowsError(try ServerSentEvent(event: "a\nretry: 1", data: "x"))
        XCTAssertThrowsError(try ServerSentEvent(event: "a\r", data: "x"))
        XCTAssertThrowsError(try ServerSentEvent(id: "1\n"))
        XCTAssertThrowsError(try ServerSentEvent(id: "1\u{0}"))
    }

    func testABroadcastIsOneMessageEvent() {
        XCTAssertEqual(text(ServerSentEvent.encodedMessage(ByteBuffer(string: "hi\nthere"))), "data: hi\ndata: there\n\n")
    }
}
