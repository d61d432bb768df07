import NIOCore
import NIOEmbedded
import NIOHTTP2
import XCTest

@testable import MoonwireCore

final class HTTP2AdvertisedStreamLimitTests: XCTestCase {
    /// The SETTINGS entries of the frame at the start of `buffer`.
    private func settings(in buffer: ByteBuffer) -> [UInt16: UInt32] {
        let bytes = Array(buffer.readableBytesView)
        XCTAssertEqual(bytes[3], 0x4, "a SETTINGS frame")
        let length = Int(bytes[0]) << 16 | Int(bytes[1]) << 8 | Int(bytes[2])
        var entries: [UInt16: UInt32] = [:]
        for entry in stride(from: 9, to: 9 + length, by: 6) {
            let id = UInt16(bytes[entry]) << 8 | UInt16(bytes[entry + 1])
            entries[id] = bytes[entry + 2..<entry + 6].reduce(0) { $0 << 8 | UInt32($1) }
        }
        return entries
    }

    func testTheServerPrefaceAdvertisesTheConfiguredLimitWhileNIOEnforcesTheBackstop() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2AdvertisedStreamLimit(limit: 128))
        let backstop = HTTP2StreamAdmission.backstop(for: 128)
        try channel.pipeline.syncOperations.addHandler(
            NIOHTTP2Handler(
                mode: .server,
                initialSettings: [
                    HTTP2Setting(parameter: .maxConcurrentStreams, value: backstop),
                    HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
                ]))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let preface = try XCTUnwrap(channel.readOutbound(as: IOData.self))
        guard case .byteBuffer(let buffer) = preface else { return XCTFail("not bytes") }
        XCTAssertEqual(settings(in: buffer), [0x3: 128, 0x4: 1 << 20])
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: HTTP2AdvertisedStreamLimit.self)) {
            XCTAssertEqual($0 as? ChannelPipelineError, .notFound, "it leaves after the first frame")
        }
        _ = try? channel.finish()
    }

    func testOtherBytesAreLeftAlone() {
        var ack = ByteBuffer(bytes: [0, 0, 0, 0x4, 0x1, 0, 0, 0, 0])
        XCTAssertFalse(HTTP2AdvertisedStreamLimit.rewrite(&ack, maxConcurrentStreams: 7))
        var noLimit = ByteBuffer(bytes: [0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x4, 0, 1, 0, 0])
        XCTAssertFalse(HTTP2AdvertisedStreamLimit.rewrite(&noLimit, maxConcurrentStreams: 7))
        var data = ByteBuffer(bytes: [0, 0, 6, 0x0, 0, 0, 0, 0, 1, 0, 0x3, 0, 0, 0, 9])
        XCTAssertFalse(HTTP2AdvertisedStreamLimit.rewrite(&data, maxConcurrentStreams: 7))
    }

    func testStreamsOverTheLimitAreRefusedAndTheFirstIsReported() {
        var admission = HTTP2StreamAdmission(limit: 2)
        for id in [1, 3] as [HTTP2StreamID] {
            XCTAssertEqual(admission.admit(), .admit)
            admission.streamCreated(id)
        }
        admission.streamCreated(2)
        XCTAssertEqual(admission.open, 2, "the server's pushes do not count")
        XCTAssertEqual(admission.admit(), .refuse(firstOnConnection: true))
        admission.streamCreated(5)
        XCTAssertEqual(admission.admit(), .refuse(firstOnConnection: false))
        admission.streamCreated(7)
        admission.streamClosed(5)
        admission.streamClosed(7)
        admission.streamClosed(1)
        XCTAssertEqual(admission.admit(), .admit, "a closed stream makes room")
        XCTAssertEqual(admission.open, 1)
        XCTAssertGreaterThan(HTTP2StreamAdmission.backstop(for: 128), 128)
        XCTAssertEqual(HTTP2StreamAdmission.backstop(for: Int(Int32.max)), Int(Int32.max))
    }
}
