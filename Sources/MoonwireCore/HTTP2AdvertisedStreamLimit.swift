// Puts the configured SETTINGS_MAX_CONCURRENT_STREAMS into the server's first SETTINGS frame.
// NIOHTTP2 enforces the limit it announces as a connection error, and has no way to announce
// one value and enforce another; so it is configured with a higher backstop
// (HTTP2StreamAdmission.backstop) and this handler, between it and the socket (or TLS),
// rewrites the value in the first frame it writes, the server's connection preface (RFC 9113
// section 3.4), then leaves the pipeline. Streams between the two limits are refused one by
// one (HTTP2StreamAdmission).
import NIOCore

/// Rewrites MAX_CONCURRENT_STREAMS in the first SETTINGS frame written through it.
final class HTTP2AdvertisedStreamLimit: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let limit: UInt32

    init(limit: Int) {
        self.limit = UInt32(clamping: limit)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .byteBuffer(var buffer) = unwrapOutboundIn(data), Self.rewrite(&buffer, maxConcurrentStreams: limit) {
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
        } else {
            context.write(data, promise: promise)
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Sets MAX_CONCURRENT_STREAMS (0x3) in a SETTINGS frame (not an ACK) on stream 0 at the
    /// start of `buffer`; false when the buffer does not start with one that has the setting.
    static func rewrite(_ buffer: inout ByteBuffer, maxConcurrentStreams: UInt32) -> Bool {
        let start = buffer.readerIndex
        guard let header = buffer.getBytes(at: start, length: 9),
            header[3] == 0x4, header[4] == 0, header[5..<9].allSatisfy({ $0 == 0 })
        else { return false }
        let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
        guard length % 6 == 0, buffer.readableBytes >= 9 + length else { return false }
        for entry in stride(from: start + 9, to: start + 9 + length, by: 6)
        where buffer.getInteger(at: entry, as: UInt16.self) == 0x3 {
            buffer.setInteger(maxConcurrentStreams, at: entry + 2)
            return true
        }
        return false
    }
}
