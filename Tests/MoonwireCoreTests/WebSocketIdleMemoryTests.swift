import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// What an open WebSocket holds while it is idle: no zlib stream until a message needs one, none
/// kept between messages in a direction without context takeover, and its handshake headers
/// packed into one string that reads back as they came.
final class WebSocketIdleMemoryTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    /// `count` messages through a sender and a receiver with these parameters, each checked.
    private func roundTrip(_ parameters: PerMessageDeflateParameters, count: Int, file: StaticString = #filePath, line: UInt = #line)
        throws -> (sender: PerMessageDeflate, receiver: PerMessageDeflate)
    {
        let sender = try XCTUnwrap(PerMessageDeflate(parameters))
        // The receiver inflates with the window the sender deflates with.
        var mirrored = parameters
        mirrored.clientMaxWindowBits = parameters.serverMaxWindowBits
        mirrored.clientNoContextTakeover = parameters.serverNoContextTakeover
        let receiver = try XCTUnwrap(PerMessageDeflate(mirrored))
        for index in 0..<count {
            let text = ByteBuffer(string: String(repeating: "message \(index % 2) ", count: 40))
            let compressed = sender.compress(text, allocator: allocator)
            XCTAssertLessThan(compressed.readableBytes, text.readableBytes, file: file, line: line)
            var output = allocator.buffer(capacity: 0)
            XCTAssertNil(receiver.inflate(compressed, final: true, into: &output, limit: 1 << 20) { _ in true }, file: file, line: line)
            XCTAssertEqual(output, text, file: file, line: line)
        }
        return (sender, receiver)
    }

    func testNoZlibStreamUntilAMessageNeedsOne() throws {
        let deflate = try XCTUnwrap(PerMessageDeflate(PerMessageDeflateParameters()))
        XCTAssertFalse(deflate.holdsStreams.deflate)
        XCTAssertFalse(deflate.holdsStreams.inflate)
    }

    func testWithContextTakeoverTheStreamsStayBetweenMessages() throws {
        let (sender, receiver) = try roundTrip(PerMessageDeflateParameters(), count: 3)
        XCTAssertTrue(sender.holdsStreams.deflate)
        XCTAssertFalse(sender.holdsStreams.inflate)
        XCTAssertTrue(receiver.holdsStreams.inflate)
    }

    func testWithoutContextTakeoverEachMessageFreesItsStream() throws {
        var parameters = PerMessageDeflateParameters()
        parameters.serverNoContextTakeover = true
        parameters.serverMaxWindowBits = 10
        let (sender, receiver) = try roundTrip(parameters, count: 3)
        XCTAssertFalse(sender.holdsStreams.deflate)
        XCTAssertFalse(receiver.holdsStreams.inflate)
    }

    func testAWindowZlibCannotUseIsRefused() {
        var parameters = PerMessageDeflateParameters()
        parameters.serverMaxWindowBits = 8
        XCTAssertNil(PerMessageDeflate(parameters))
    }

    func testPackedHeadersReadBackInOrderWithTheirCase() {
        let headers: HTTPHeaders = [
            "Host": "example.com", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Cookie": "a=1; b=2",
            "X-Empty": "", "X-Time": "12:30:00", "cookie": "c=3",
        ]
        let packed = PackedHeaders(headers).headers
        XCTAssertEqual(packed.map { "\($0.name)=\($0.value)" }, headers.map { "\($0.name)=\($0.value)" })
        XCTAssertEqual(packed["cookie"], ["a=1; b=2", "c=3"])
    }

    /// Headers made in code may hold what the lines cannot tell apart; they are kept as given.
    func testHeadersTheLinesCannotHoldAreKeptAsGiven() {
        let headers = HTTPHeaders([("Odd:Name", "1"), ("X-Lines", "a\nb")])
        XCTAssertEqual(PackedHeaders(headers).headers.map { "\($0.name)=\($0.value)" }, ["Odd:Name=1", "X-Lines=a\nb"])
        XCTAssertEqual(PackedHeaders([:]).headers.count, 0)
    }

    func testGUIDsAreUUIDShapedAndDistinct() {
        let guids = (0..<100).map { _ in WebSocketConnection.makeGUID() }
        XCTAssertEqual(Set(guids).count, guids.count)
        for guid in guids {
            XCTAssertEqual(guid.split(separator: "-", omittingEmptySubsequences: false).map(\.count), [8, 4, 4, 4, 12], guid)
            XCTAssertTrue(guid.utf8.allSatisfy { $0 == UInt8(ascii: "-") || (48...57).contains($0) || (97...102).contains($0) }, guid)
        }
    }

    /// Read buffers start at 256 bytes, double after a full read up to 64 KiB, halve after two
    /// reads under half down to 64, as NIO's adaptive sizer does, in a value NIO's existential
    /// holds without a box of its own.
    func testReadBuffersStartSmallAndAdaptInAValueThatNeedsNoBox() {
        XCTAssertLessThanOrEqual(MemoryLayout<ReceiveBufferSizes>.size, 3 * MemoryLayout<Int>.size)
        var sizes = ReceiveBufferSizes()
        XCTAssertEqual(sizes.nextBufferSize(), 256)
        XCTAssertEqual(sizes.buffer(allocator: allocator).capacity, 256)
        var seen: [Int] = []
        for _ in 0..<12 {
            let size = sizes.nextBufferSize()!
            let mayGrow = sizes.record(actualReadBytes: size)
            XCTAssertEqual(mayGrow, size <= 32 * 1024)
            seen.append(sizes.nextBufferSize()!)
        }
        XCTAssertEqual(seen, [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 65536, 65536, 65536, 65536])
        seen = []
        for _ in 0..<24 {
            let mayGrow = sizes.record(actualReadBytes: 10)
            XCTAssertFalse(mayGrow)
            seen.append(sizes.nextBufferSize()!)
        }
        XCTAssertEqual(seen.last, 64)
        XCTAssertEqual(Array(seen.prefix(4)), [65536, 32768, 32768, 16384])
        let mayGrow = sizes.record(actualReadBytes: 40)
        XCTAssertFalse(mayGrow)
        XCTAssertEqual(sizes.nextBufferSize(), 64)
    }
}
