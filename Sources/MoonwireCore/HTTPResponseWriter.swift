// Writes the responses of one exchange handler. On HTTP/1.1 it serializes them itself and
// gathers the head and small bodies into one buffer, written once per response; on HTTP/2 it
// hands NIO's stream codec the same head, body and end parts it always took.
import NIOCore
import NIOHTTP1

/// The response half of an exchange handler: head, body pieces, end. Used on its loop only.
struct HTTPResponseWriter {
    enum Target {
        /// An HTTP/1.1 connection: bytes go to its outlet.
        case connection(HTTP1ResponseOutlet)
        /// An HTTP/2 stream: parts go down the handler's own pipeline to the stream codec.
        case stream
    }

    /// Bodies up to this size are copied behind the head; larger ones are written as they are.
    private static let gatherLimit = 16 * 1024

    private let target: Target
    /// The channel's allocator, kept: asking the channel for it costs a lookup per response.
    var allocator = ByteBufferAllocator()
    /// HTTP/1.1 bytes not yet handed to the outlet.
    private var pending: ByteBuffer?
    /// The last small buffer handed to the outlet, for the next response: once the socket has
    /// let go of it, writing there again spares an allocation and a free per response (about
    /// 200 instructions); while it has not, clearing it makes a new one, as before. Only small
    /// ones are kept, so that an idle connection holds at most `spareCapacity` bytes.
    private var spare: ByteBuffer?
    private static let spareCapacity = 1024
    /// The body in progress is chunked (HTTP/1.1 streams of unknown length).
    private var chunked = false

    init(target: Target) {
        self.target = target
    }

    /// Starts a response with the server's own fields. `streamed` is a body of unknown length;
    /// on HTTP/1.1 it is chunked (or, for HTTP/1.0, ends with the connection). `bodyless`
    /// responses (HEAD, 1xx, 204, 304) send no body bytes and no framing, whatever their
    /// fields announce. `fieldLines` stand for `headers` on HTTP/1.1 (HTTP/2 takes
    /// `headers`). `fields` is inout, its framing set here, because a copy of it
    /// cost about 150 instructions per response (its date string retained and released twice).
    mutating func head(
        status: Int, version: HTTPVersion, headers: HTTPHeaders, fields: inout ServerOwnedFields,
        fieldLines: HeadFieldLines? = nil, streamed: Bool, bodyless: Bool, link: ExchangeLink
    ) {
        switch target {
        case .stream:
            link.writeHead(status: status, headers: headers, fields: fields)
        case .connection:
            fields.chunked =
                streamed && version == .http1_1 && !HTTPResponse.forbidsBody(status) && !headers.contains(name: "content-length")
            chunked = fields.chunked && !bodyless
            // Room for a body that will be gathered behind the head, so that appending it does
            // not move the head to a larger buffer (a 4 KiB static file did, every time).
            let gathered = bodyless ? 0 : fields.contentLength.map { $0 <= Self.gatherLimit ? $0 : 0 } ?? 0
            var buffer = takePending(capacity: 512 + gathered)
            HTTP1ResponseSerializer.writeHead(
                status: status, version: version, headers: headers, fields: fields, fieldLines: fieldLines, into: &buffer)
            pending = buffer
        }
    }

    /// Writes a head that does not end the exchange, such as 100 Continue or 103 Early Hints,
    /// and flushes it.
    mutating func informational(
        _ status: HTTPResponseStatus, version: HTTPVersion, headers: HTTPHeaders = [:], link: ExchangeLink
    ) {
        switch target {
        case .stream:
            let head = HTTPResponseHead(version: version, status: status, headers: headers)
            link.write(.head(head), promise: nil)
            link.flush()
        case .connection:
            var buffer = takePending(capacity: 32)
            HTTP1ResponseSerializer.writeInformational(status, version: version, headers: headers, into: &buffer)
            pending = buffer
            flush(link: link)
        }
    }

    /// Writes a piece of the body. `promise` completes when it has been written to the socket.
    mutating func body(_ data: IOData, promise: EventLoopPromise<Void>?, link: ExchangeLink) {
        // The outlet is taken out of `target` only where it is used: a gathered body without a
        // promise, nearly every one, does not retain it.
        if case .stream = target {
            link.write(.body(data), promise: promise)
            return
        }
        switch data {
        case .byteBuffer(let bytes) where bytes.readableBytes <= Self.gatherLimit:
            var buffer = takePending(capacity: bytes.readableBytes + 16)
            if chunked {
                HTTP1ResponseSerializer.writeChunk(bytes, into: &buffer)
            } else {
                buffer.writeImmutableBuffer(bytes)
            }
            pending = buffer
            if let promise, case .connection(let outlet) = target { sendPending(outlet, promise: promise) }
        case .byteBuffer(let bytes):
            guard case .connection(let outlet) = target else { return }
            if chunked {
                var sizeLine = takePending(capacity: 16)
                HTTP1ResponseSerializer.writeChunkSize(bytes.readableBytes, into: &sizeLine)
                pending = sizeLine
            }
            sendPending(outlet, promise: nil)
            outlet.send(data, promise: promise)
            if chunked { pending = ByteBuffer(staticString: "\r\n") }
        case .fileRegion:
            guard case .connection(let outlet) = target else { return }
            sendPending(outlet, promise: nil)
            outlet.send(data, promise: promise)
        }
    }

    /// Ends the response; `promise` completes once everything of it has been written.
    /// `trailers` go out after the body of a chunked HTTP/1.1 answer or as HTTP/2's trailing
    /// HEADERS frame; a body framed by its length or the close has nowhere to carry them.
    mutating func end(trailers: HTTPHeaders? = nil, promise: EventLoopPromise<Void>?, link: ExchangeLink) {
        guard case .connection(let outlet) = target else {
            let trailers = trailers?.isEmpty == false ? trailers : nil
            link.write(.end(trailers), promise: promise)
            link.flush()
            return
        }
        if chunked {
            var buffer = takePending(capacity: 8)
            HTTP1ResponseSerializer.writeLastChunk(trailers: trailers, into: &buffer)
            pending = buffer
            chunked = false
        }
        if pending != nil {
            sendPending(outlet, promise: promise)
        } else if let promise {
            outlet.send(.byteBuffer(ByteBuffer()), promise: promise)
        }
        outlet.flush()
    }

    /// Sends what was written so far without ending the response.
    mutating func flush(link: ExchangeLink) {
        switch target {
        case .stream:
            link.flush()
        case .connection(let outlet):
            sendPending(outlet, promise: nil)
            outlet.flush()
        }
    }

    /// The pending bytes to append to, or a new buffer; taken out so that appending does not
    /// copy storage the stored property still shares.
    private mutating func takePending(capacity: Int) -> ByteBuffer {
        if let buffer = pending {
            pending = nil
            return buffer
        }
        if var buffer = spare.take(), buffer.capacity >= capacity {
            buffer.clear()
            return buffer
        }
        return allocator.buffer(capacity: capacity)
    }

    private mutating func sendPending(_ outlet: HTTP1ResponseOutlet, promise: EventLoopPromise<Void>?) {
        guard let buffer = pending.take() else {
            promise?.succeed()
            return
        }
        if buffer.capacity <= Self.spareCapacity { spare = buffer }
        outlet.send(.byteBuffer(buffer), promise: promise)
    }
}
