import NIOCore
import XCTest

@testable import MoonwireCore

/// How an outbound socket cuts what it read into LuaSocket's answers, without a socket: lines
/// split anywhere, byte counts, the peer's close in the middle, and the caps that keep a peer
/// from making the server buffer without limit.
final class TCPReceiveBufferTests: XCTestCase {
    private func buffer(line: Int = 1 << 20, total: Int = 64 << 20) -> TCPReceiveBuffer {
        var limits = TCPReceiveBuffer.Limits()
        limits.line = line
        limits.total = total
        return TCPReceiveBuffer(limits: limits)
    }

    private func data(_ text: String) -> TCPReceiveBuffer.Outcome { .data(ByteBuffer(string: text)) }
    private func closed(_ text: String) -> TCPReceiveBuffer.Outcome { .closed(partial: ByteBuffer(string: text)) }

    func testLinesEndAtLFAndLoseTheirCRs() {
        var received = buffer()
        received.append(ByteBuffer(string: "+PONG\r\nplain\n\r\nmid\rdle\r\n"))
        XCTAssertEqual(received.take(.line), data("+PONG"))
        XCTAssertEqual(received.take(.line), data("plain"))
        XCTAssertEqual(received.take(.line), data(""), "an empty line is a line")
        XCTAssertEqual(received.take(.line), data("middle"), "every CR is dropped, as LuaSocket does")
        XCTAssertEqual(received.take(.line), .needMore)
        XCTAssertEqual(received.count, 0)
    }

    func testACRLFSplitAcrossReadsMakesOneLine() {
        var received = buffer()
        received.append(ByteBuffer(string: "hel"))
        XCTAssertEqual(received.take(.line), .needMore)
        received.append(ByteBuffer(string: "lo\r"))
        XCTAssertEqual(received.take(.line), .needMore)
        received.append(ByteBuffer(string: "\nnext"))
        XCTAssertEqual(received.take(.line), data("hello"))
        XCTAssertEqual(received.take(.line), .needMore)
        XCTAssertEqual(received.count, 4, "the start of the next line stays")
    }

    func testByteCountsTakeExactlyThatMany() {
        var received = buffer()
        received.append(ByteBuffer(string: "$5\r\nhel"))
        XCTAssertEqual(received.take(.line), data("$5"))
        XCTAssertEqual(received.take(.bytes(7)), .needMore)
        received.append(ByteBuffer(string: "lo\r\n+OK\r\n"))
        XCTAssertEqual(received.take(.bytes(7)), data("hello\r\n"), "a count keeps CRs: it is raw bytes")
        XCTAssertEqual(received.take(.bytes(0)), data(""))
        XCTAssertEqual(received.take(.line), data("+OK"))
    }

    func testBinaryAndGarbageBytesPassThroughUnchanged() {
        var received = buffer()
        let garbage: [UInt8] = [0, 255, 13, 0x80, 0xC3, 0x28, 10, 1, 2, 3]
        received.append(ByteBuffer(bytes: garbage))
        XCTAssertEqual(received.take(.line), .data(ByteBuffer(bytes: [0, 255, 0x80, 0xC3, 0x28])))
        XCTAssertEqual(received.take(.bytes(3)), .data(ByteBuffer(bytes: [1, 2, 3])))
    }

    func testAllWaitsForTheCloseAndReturnsEverything() {
        var received = buffer()
        received.append(ByteBuffer(string: "one\r\n"))
        XCTAssertEqual(received.take(.all), .needMore)
        received.append(ByteBuffer(string: "two"))
        received.peerClosed()
        XCTAssertEqual(received.take(.all), data("one\r\ntwo"), "no error at the close, CRs kept")
        XCTAssertEqual(received.take(.all), data(""), "and then nothing, still without an error")
    }

    func testTheCloseMidLineOrMidCountGivesWhatThereWas() {
        var received = buffer()
        received.append(ByteBuffer(string: "par\rtial"))
        received.peerClosed()
        XCTAssertEqual(received.take(.line), closed("partial"))
        XCTAssertEqual(received.take(.line), closed(""), "nothing more after it")

        var counted = buffer()
        counted.append(ByteBuffer(string: "abc"))
        counted.peerClosed()
        XCTAssertEqual(counted.take(.bytes(2)), data("ab"), "what is buffered is still handed out")
        XCTAssertEqual(counted.take(.bytes(5)), closed("c"))
    }

    func testALineOverTheCapFailsWhetherItsEndCameOrNot() {
        var endless = buffer(line: 8)
        endless.append(ByteBuffer(string: "12345678"))
        XCTAssertEqual(endless.take(.line), .needMore, "exactly the cap is allowed")
        endless.append(ByteBuffer(string: "9"))
        XCTAssertEqual(endless.take(.line), .lineTooLong)

        var ended = buffer(line: 8)
        ended.append(ByteBuffer(string: "123456789\r\n"))
        XCTAssertEqual(ended.take(.line), .lineTooLong, "its CR counts, as the peer sent it")

        var fits = buffer(line: 8)
        fits.append(ByteBuffer(string: "12345678\n"))
        XCTAssertEqual(fits.take(.line), data("12345678"))
    }

    func testCountsAndAllAreCapped() {
        var received = buffer(total: 10)
        XCTAssertEqual(received.take(.bytes(11)), .overLimit, "refused before any byte is read")
        received.append(ByteBuffer(string: "0123456789"))
        XCTAssertEqual(received.take(.all), .needMore)
        received.append(ByteBuffer(string: "x"))
        XCTAssertEqual(received.take(.all), .overLimit)
        XCTAssertEqual(received.take(.bytes(10)), data("0123456789"), "a count within the cap still works")
    }

    func testAReceiveThatGivesUpTakesItsPartial() {
        var received = buffer()
        received.append(ByteBuffer(string: "half a li\rne"))
        XCTAssertEqual(received.takePartial(.line), ByteBuffer(string: "half a line"))
        XCTAssertEqual(received.count, 0)
        received.append(ByteBuffer(string: "abcdef"))
        XCTAssertEqual(received.takePartial(.bytes(4)), ByteBuffer(string: "abcd"))
        XCTAssertEqual(received.takePartial(.all), ByteBuffer(string: "ef"))
    }

    func testManyLinesDoNotGrowTheBufferWithoutBound() {
        var received = buffer()
        for i in 0..<10_000 {
            received.append(ByteBuffer(string: "line \(i)\r\nline"))
            XCTAssertEqual(received.take(.line), data(i == 0 ? "line 0" : "lineline \(i)"))
        }
        XCTAssertEqual(received.count, 4)
    }
}
