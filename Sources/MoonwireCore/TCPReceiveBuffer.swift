// What an outbound TCP socket has read and not yet handed out, and the rule that cuts it into
// what a receive asks for: a line, everything until the peer closes, or a byte count, with
// LuaSocket's meanings (a line ends at LF and its CRs are dropped; at the peer's close, `all`
// returns what came and the others report what they had). A pure value: the connection feeds
// it bytes and asks it for answers, and the tests drive it without a socket. Every pattern has
// a cap, so a peer cannot make the server buffer without limit.
import NIOCore

/// What one receive asks for, in LuaSocket's terms.
public enum TCPReceivePattern: Sendable, Equatable {
    /// `"*l"`: a line, without its LF and its CRs.
    case line
    /// `"*a"`: everything until the peer closes.
    case all
    /// A byte count.
    case bytes(Int)
}

/// Bytes read from a peer and not yet handed out.
public struct TCPReceiveBuffer {
    /// How much one receive may gather before it fails rather than buffer more.
    public struct Limits: Sendable {
        /// The longest line `.line` accepts, without its LF: 1 MiB, far above what line
        /// protocols send (Redis's inline replies, SMTP, memcached) and small enough per socket.
        public var line = 1 << 20
        /// The most `.all` or `.bytes` may return: 64 MiB, room for large values while still a
        /// bound on what a peer makes the server hold.
        public var total = 64 << 20

        public init() {}
    }

    /// What a receive gets from the buffer now.
    public enum Outcome: Equatable {
        /// The pattern is complete: these bytes are its answer, taken from the buffer.
        case data(ByteBuffer)
        /// Not complete yet: read more from the peer, then ask again.
        case needMore
        /// The peer closed before the pattern completed: what there was, taken from the buffer.
        case closed(partial: ByteBuffer)
        /// A line longer than `Limits.line` with no end in sight.
        case lineTooLong
        /// More than `Limits.total` bytes asked for, or gathered by `.all`.
        case overLimit
    }

    public let limits: Limits
    private var bytes: ByteBuffer
    /// How far (from the reader index) a line's LF was already looked for.
    private var scanned = 0
    /// The peer closed its side: no more bytes will come.
    public private(set) var isClosed = false

    public init(limits: Limits = Limits(), allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.limits = limits
        self.bytes = allocator.buffer(capacity: 0)
    }

    /// Bytes waiting to be handed out.
    public var count: Int { bytes.readableBytes }

    /// Adds what the peer sent.
    public mutating func append(_ chunk: ByteBuffer) {
        var chunk = chunk
        // Handed-out bytes stay in front of the reader index; drop them once they outweigh
        // what is left, so a socket that always holds a little does not grow for ever.
        if bytes.readerIndex > 0, bytes.readerIndex >= bytes.readableBytes { bytes.discardReadBytes() }
        bytes.writeBuffer(&chunk)
    }

    /// Records that the peer closed: patterns that need more bytes now end.
    public mutating func peerClosed() {
        isClosed = true
    }

    /// The answer to `pattern` from what is buffered.
    public mutating func take(_ pattern: TCPReceivePattern) -> Outcome {
        switch pattern {
        case .line: takeLine()
        case .all: takeAll()
        case .bytes(let wanted): takeBytes(wanted)
        }
    }

    /// What a receive that gives up (its timeout passed) hands back, as LuaSocket does: the
    /// bytes it had gathered, taken from the buffer (a line's CRs dropped).
    public mutating func takePartial(_ pattern: TCPReceivePattern) -> ByteBuffer {
        switch pattern {
        case .line: return removingCarriageReturns(takeFirst(bytes.readableBytes))
        case .all: return takeFirst(bytes.readableBytes)
        case .bytes(let wanted): return takeFirst(min(max(wanted, 0), bytes.readableBytes))
        }
    }

    private mutating func takeLine() -> Outcome {
        let view = bytes.readableBytesView
        let searchStart = view.index(view.startIndex, offsetBy: scanned)
        if let newline = view[searchStart...].firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - view.startIndex
            guard length <= limits.line else { return .lineTooLong }
            var line = takeFirst(length + 1)
            line.moveWriterIndex(to: line.writerIndex - 1)
            return .data(removingCarriageReturns(line))
        }
        scanned = view.count
        guard view.count <= limits.line else { return .lineTooLong }
        guard isClosed else { return .needMore }
        return .closed(partial: removingCarriageReturns(takeFirst(view.count)))
    }

    private mutating func takeAll() -> Outcome {
        guard bytes.readableBytes <= limits.total else { return .overLimit }
        guard isClosed else { return .needMore }
        return .data(takeFirst(bytes.readableBytes))
    }

    private mutating func takeBytes(_ wanted: Int) -> Outcome {
        guard wanted <= limits.total else { return .overLimit }
        if bytes.readableBytes >= wanted { return .data(takeFirst(max(wanted, 0))) }
        guard isClosed else { return .needMore }
        return .closed(partial: takeFirst(bytes.readableBytes))
    }

    /// The first `count` buffered bytes, removed from the buffer.
    private mutating func takeFirst(_ count: Int) -> ByteBuffer {
        scanned = 0
        let taken = bytes.readSlice(length: count)!
        if bytes.readableBytes == 0 { bytes.clear() }
        return taken
    }

    /// A line as LuaSocket and OpenResty return it: every CR is dropped, not only the last.
    private func removingCarriageReturns(_ line: ByteBuffer) -> ByteBuffer {
        guard line.readableBytesView.contains(UInt8(ascii: "\r")) else { return line }
        var kept = ByteBuffer()
        kept.reserveCapacity(line.readableBytes)
        for byte in line.readableBytesView where byte != UInt8(ascii: "\r") { kept.writeInteger(byte) }
        return kept
    }
}
