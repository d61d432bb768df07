// Turns an HTTP/1.x connection's bytes into request parts (head, body slices, end), as NIO's
// llhttp-based decoder did, at a fraction of its cost per request: a head that arrived whole is
// parsed from the read buffer itself (HTTP1HeadParser), and body bytes leave as slices of it.
// Bytes are kept only while a head, a chunk-size line or a trailer line is incomplete.
//
// Trailers (RFC 9112 section 7.1.2) share the head's byte budget, at most `maxTrailerFields` of
// them: they are collected in one array, and a trailer line that trickles in is searched once.
//
// After a request asking for an upgrade, parsing pauses: what follows may be the new protocol's
// bytes. If the upgrade happens, NIO's upgrade handler removes this decoder, which hands the
// kept bytes on; if it is declined, the exchange handler says so and parsing resumes.
//
// Before each head it asks the exchange handler whether it takes a request now (not during an
// answer, nor while the client leaves its answers unread): if not, the bytes wait here, unparsed,
// until the handler calls `resume()`. Pipelined requests thus cost their bytes while they wait
// (at most one read batch), not a parsed head each, and a client that does not read gets no more
// answers queued than the channel's write buffer holds (its high-water mark, 64 KiB).
//
// It is the connection's first handler, and tells the read timers and the response outlet where
// each read starts and ends: as handlers of their own they cost every read two more hops.
import NIOCore
import NIOHTTP1

/// The HTTP/1.x request decoder of a connection (RFC 9112), at the front of its pipeline.
final class HTTP1RequestDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart

    private enum State {
        /// Waiting for a head; the first `searched` kept bytes hold no end of it.
        case head(searched: Int)
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CR LF after a chunk's data.
        case chunkDataEnd
        /// Trailer lines; `room` is what the head and the lines before left of the head's
        /// budget, `searched` how many kept bytes of the current line hold no LF.
        case trailers(room: Int, searched: Int)
        /// Every part but the end was handed on; the end follows unless the handlers behind
        /// closed the connection or removed this decoder meanwhile.
        case ending
        /// After an upgrade request: bytes are kept for the upgraded protocol.
        case paused
        /// After a request that closes the connection, or malformed input: bytes are dropped.
        case done
    }

    /// Longest head (request line and fields) plus trailer section, in bytes.
    private let maxHeadSize: Int
    private var state = State.head(searched: 0)
    /// The length of the current request's head, whose trailers get what it left of the budget.
    private var headLength = 0
    /// The trailer fields of the current request, while its trailer section arrives.
    private var trailers: [(String, String)] = []
    /// The previous head's field strings, given again for the same lines.
    private var fieldStrings = HeadFieldStrings()
    /// Received bytes not consumed yet.
    private var kept: ByteBuffer?
    /// Inside a decode, whose loop asks before each head anyway: a `resume()` does nothing.
    private var insideDecode = false
    /// Inside a resume, whose flush may make the channel writable, which resumes: the call
    /// only sets `resumeAgain`, for the outer resume's loop.
    private var resuming = false
    private var resumeAgain = false
    /// The last decode stopped at a head the exchange handler did not take.
    private var holding = false
    /// The framing of the request being received.
    private var framing = HTTP1Framing(body: .none, declaresBody: false, keepAlive: true, upgrade: false)
    private var context: ChannelHandlerContext?
    /// The exchange handler, once nothing sits between it and this decoder (the upgrade
    /// handler has left): parts go to it by a direct call, which saves boxing each one in
    /// NIOAny and casting it back. Cleared when either handler leaves the pipeline.
    var recipient: HTTPExchangeHandler?

    /// The connection's read timers, told of every read before it is decoded.
    private let timeouts: HTTPReadTimeouts?
    /// Where responses leave, at this handler's context; its flushes wait for a read's end.
    private let outlet: HTTP1ResponseOutlet?

    /// A chunk-size line (with extensions) longer than this is refused.
    private static let maxChunkLine = 4096
    /// More trailer fields than this are refused (431), as Apache's LimitRequestFields refuses
    /// them: a request has little use for them, and each one costs two strings.
    static let maxTrailerFields = 100

    init(maxHeadSize: Int, timeouts: HTTPReadTimeouts? = nil, outlet: HTTP1ResponseOutlet? = nil) {
        self.maxHeadSize = maxHeadSize
        self.timeouts = timeouts
        self.outlet = outlet
    }

    /// Paused after an upgrade request that was not upgraded.
    var isPaused: Bool {
        if case .paused = state { return true }
        return false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        outlet?.attach(to: context)
        timeouts?.attach(to: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeouts?.detach()
        outlet?.detach()
        // Removed by an upgrade: the bytes after the request belong to the new protocol.
        if case .paused = state, let bytes = kept, bytes.readableBytes > 0, context.channel.isActive {
            context.fireChannelRead(NIOAny(bytes))
        }
        kept = nil
        trailers = []
        state = .done
        recipient = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        timeouts?.readStarted(bytes: input.readableBytes)
        outlet?.readStarted()
        if var earlier = kept {
            kept = nil
            earlier.writeBuffer(&input)
            input = earlier
        }
        decode(&input, context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        timeouts?.readComplete()
        context.fireChannelReadComplete()
        outlet?.readComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeouts?.detach()
        let midRequest: Bool
        switch state {
        case .head: midRequest = (kept?.readableBytes ?? 0) > 0
        case .body, .chunkSize, .chunkData, .chunkDataEnd, .trailers: midRequest = true
        case .ending, .paused, .done: midRequest = false
        }
        state = .done
        kept = nil
        trailers = []
        if midRequest { context.fireErrorCaught(HTTPParserError.invalidEOFState) }
        context.fireChannelInactive()
    }

    /// The exchange handler received the request that paused parsing, so no upgrade happened:
    /// parsing resumes with the kept bytes once the current call stack is done.
    func upgradeDeclined() {
        guard isPaused, let context else { return }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let decoder = loopBoundSelf.value
            guard decoder.isPaused, let context = decoder.context else { return }
            decoder.state = decoder.framing.keepAlive ? .head(searched: 0) : .done
            guard var input = decoder.kept else { return }
            decoder.kept = nil
            decoder.decode(&input, context: context)
        }
    }

    /// The exchange handler takes requests again: decodes the bytes kept meanwhile, their
    /// answers flushed together as a read batch's are, until they are all taken or the handler
    /// stops taking them again; then tells it whether requests are still held.
    func resume() {
        guard !insideDecode, let context else { return }
        guard !resuming else {
            resumeAgain = true
            return
        }
        resuming = true
        repeat {
            resumeAgain = false
            guard case .head = state, var input = kept else { break }
            kept = nil
            outlet?.readStarted()
            decode(&input, context: context)
            outlet?.readComplete()
        } while resumeAgain
        resuming = false
        if !holding { recipient?.requestsTaken() }
    }

    /// Decodes what `input` holds and keeps the rest. The state is updated before each part is
    /// fired, since the handlers behind may close the connection or remove this decoder.
    private func decode(_ input: inout ByteBuffer, context: ChannelHandlerContext) {
        insideDecode = true
        defer { insideDecode = false }
        holding = false
        do {
            decoding: while input.readableBytes > 0 {
                switch state {
                case .head(let searched):
                    if let recipient, !recipient.takesRequests {
                        holding = true
                        recipient.requestsHeld()
                        break decoding
                    }
                    guard try decodeHead(&input, searched: searched, context: context) else { break decoding }
                case .body(let remaining):
                    decodeBody(&input, remaining: remaining, context: context) { .body(remaining: $0) }
                case .chunkData(let remaining):
                    decodeBody(&input, remaining: remaining, context: context) { $0 > 0 ? .chunkData(remaining: $0) : .chunkDataEnd }
                case .chunkSize:
                    let size = try line(&input, limit: Self.maxChunkLine, tooLong: .invalidChunkSize, parse: Self.chunkSize)
                    guard let size else { break decoding }
                    state = size > 0 ? .chunkData(remaining: size) : .trailers(room: maxHeadSize - headLength, searched: 0)
                case .chunkDataEnd:
                    let empty = try line(&input, limit: 2, tooLong: .invalidChunkSize) { _, range in range.isEmpty }
                    guard let empty else { break decoding }
                    guard empty else { throw HTTPParserError.invalidChunkSize }
                    state = .chunkSize
                case .trailers(let room, let searched):
                    guard try decodeTrailer(&input, room: room, searched: searched, context: context) else { break decoding }
                case .ending, .paused, .done:
                    break decoding
                }
            }
        } catch {
            state = .done
            kept = nil
            trailers = []
            context.fireErrorCaught(error)
            return
        }
        switch state {
        case .done: kept = nil
        default: if input.readableBytes > 0 { kept = input }
        }
    }

    /// Parses a head if `input` holds all of it; false when more bytes are needed.
    private func decodeHead(_ input: inout ByteBuffer, searched: Int, context: ChannelHandlerContext) throws -> Bool {
        let maxHeadSize = self.maxHeadSize
        // The head comes out of the closure through `head` and is taken from there, so that it
        // is moved to the exchange handler, not copied: a copy retains and releases its storage
        // and its fields.
        var skipped = 0
        var head: HTTPRequestHead?
        let parsed = try input.withUnsafeReadableBytes { bytes -> (framing: HTTP1Framing, length: Int)? in
            skipped = HTTP1HeadParser.leadingEmptyLines(in: bytes)
            let rest = UnsafeRawBufferPointer(rebasing: bytes[skipped...])
            guard let end = HTTP1HeadParser.headEnd(in: rest, from: searched - skipped - 2) else {
                if rest.count > maxHeadSize { throw Self.oversizeHead(rest, limit: maxHeadSize) }
                try HTTP1HeadParser.checkStart(rest, checked: searched - skipped)
                return nil
            }
            if end > maxHeadSize { throw Self.oversizeHead(rest, limit: maxHeadSize) }
            let result = try HTTP1HeadParser.parse(rest, end: end, strings: &fieldStrings)
            head = result.head
            return (result.framing, result.length)
        }
        input.moveReaderIndex(forwardBy: skipped)
        guard let (framing, length) = parsed else {
            state = .head(searched: input.readableBytes)
            return false
        }
        input.moveReaderIndex(forwardBy: length)
        self.framing = framing
        headLength = length
        switch framing.body {
        case .none: state = .ending
        case .length(let length): state = .body(remaining: length)
        case .chunked: state = .chunkSize
        }
        deliverHead(head.take()!, framing: framing, context: context)
        if case .none = framing.body, case .ending = state { messageEnd(trailers: nil, input: &input, context: context) }
        return true
    }

    /// A head over `limit` bytes: 414 when its request line alone is (RFC 9112 section 3),
    /// otherwise 431.
    private static func oversizeHead(_ head: UnsafeRawBufferPointer, limit: Int) -> any Error {
        let lineEnd = HTTP1HeadParser.firstLF(head, from: 0) ?? head.count
        return lineEnd >= limit ? HTTP1RequestError.targetTooLong(limit: limit) : HTTPParserError.headerOverflow
    }

    /// Hands on up to `remaining` body bytes as a slice; `next` is the state for what is left.
    private func decodeBody(
        _ input: inout ByteBuffer, remaining: Int, context: ChannelHandlerContext, next: (Int) -> State
    ) {
        let count = min(remaining, input.readableBytes)
        let slice = input.readSlice(length: count)!
        let left = remaining - count
        if case .body = state, left == 0 {
            state = .ending
            deliver(.body(slice), context: context)
            if case .ending = state { messageEnd(trailers: nil, input: &input, context: context) }
        } else {
            state = next(left)
            deliver(.body(slice), context: context)
        }
    }

    /// One trailer line, or the empty line that ends the request; false when incomplete.
    private func decodeTrailer(
        _ input: inout ByteBuffer, room: Int, searched: Int, context: ChannelHandlerContext
    ) throws -> Bool {
        let start = input.readableBytes
        // The empty line that ends the section always fits; a field line (3 bytes at least)
        // must fit in `room`.
        guard
            let field = try line(&input, from: searched, limit: max(room, 2), tooLong: .headerOverflow, parse: {
                bytes, range -> (String, String)? in
                guard !range.isEmpty else { return nil }
                let (name, value) = try HTTP1HeadParser.parseField(bytes, range)
                return (HTTP1HeadParser.string(bytes, name), HTTP1HeadParser.string(bytes, value))
            })
        else {
            state = .trailers(room: room, searched: start)
            return false
        }
        if let field {
            guard trailers.count < Self.maxTrailerFields else { throw HTTPParserError.headerOverflow }
            trailers.append(field)
            state = .trailers(room: room - (start - input.readableBytes), searched: 0)
        } else {
            let fields = trailers
            trailers = []
            messageEnd(trailers: fields.isEmpty ? nil : HTTPHeaders(fields), input: &input, context: context)
        }
        return true
    }

    /// The request is complete: decides what the bytes after it are, then fires its end. An
    /// upgrade request pauses parsing only while NIO's upgrade handler may still act on it; it
    /// has left once parts go straight to the exchange handler.
    private func messageEnd(trailers: HTTPHeaders?, input: inout ByteBuffer, context: ChannelHandlerContext) {
        if framing.upgrade, recipient == nil {
            state = .paused
            // Kept before the end is fired: an upgrade may remove this decoder meanwhile.
            if input.readableBytes > 0 { kept = input }
            input.moveReaderIndex(to: input.writerIndex)
        } else {
            state = framing.keepAlive ? .head(searched: 0) : .done
        }
        deliver(.end(trailers), context: context)
    }

    /// A head goes to the exchange handler with its framing, which spares it looking up the
    /// fields the parser read already (Content-Length, Connection).
    private func deliverHead(_ head: consuming HTTPRequestHead, framing: HTTP1Framing, context: ChannelHandlerContext) {
        if let recipient {
            recipient.accept(consume head, framing: framing)
        } else {
            context.fireChannelRead(wrapInboundOut(.head(consume head)))
        }
    }

    private func deliver(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        if let recipient {
            recipient.accept(part)
        } else {
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// Reads one line (without CR LF) and parses it, or returns nil when it is incomplete. The
    /// first `from` bytes are known to hold no LF. A line of more than `limit` bytes, LF
    /// included, throws `tooLong`.
    private func line<T>(
        _ input: inout ByteBuffer, from: Int = 0, limit: Int, tooLong: HTTPParserError,
        parse: (UnsafeRawBufferPointer, Range<Int>) throws -> T
    ) throws -> T? {
        let parsed = try input.withUnsafeReadableBytes { bytes -> (T, Int)? in
            guard let lf = HTTP1HeadParser.firstLF(bytes, from: from) else {
                if bytes.count >= limit { throw tooLong }
                return nil
            }
            if lf >= limit { throw tooLong }
            let end = lf > 0 && bytes[lf - 1] == cr8 ? lf - 1 : lf
            return (try parse(bytes, 0..<end), lf + 1)
        }
        guard let (value, length) = parsed else { return nil }
        input.moveReaderIndex(forwardBy: length)
        return value
    }

    /// chunk-size [ chunk-ext ] (RFC 9112 section 7.1); extensions are not interpreted.
    private static func chunkSize(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) throws -> Int {
        var index = line.lowerBound
        var size = 0
        while index < line.upperBound, let digit = PercentEncoding.hexValue(bytes[index]) {
            // Fifteen hex digits already exceed any body this server accepts.
            guard index - line.lowerBound < 15 else { throw HTTPParserError.invalidChunkSize }
            size = size << 4 | Int(digit)
            index += 1
        }
        guard index > line.lowerBound else { throw HTTPParserError.invalidChunkSize }
        while index < line.upperBound, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") { index += 1 }
        if index < line.upperBound {
            guard bytes[index] == UInt8(ascii: ";") else { throw HTTPParserError.invalidChunkSize }
            for position in index..<line.upperBound where bytes[position] < 0x20 && bytes[position] != UInt8(ascii: "\t") {
                throw HTTPParserError.invalidChunkSize
            }
        }
        return size
    }
}
