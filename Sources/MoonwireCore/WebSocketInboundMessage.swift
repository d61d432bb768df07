// A message being assembled from the frames a client sends: its bytes so far (unmasked, and
// inflated when it is compressed), checked as they arrive rather than once it is whole: text
// against UTF-8 (so a bad byte fails the connection as soon as it arrives, even mid-frame),
// the size against max_message_size (compressed bytes and inflated ones), and the memory held
// against the server's budget of partial messages.
import NIOCore

/// One incoming message on its way. A value type used on its connection's loop only.
struct WebSocketInboundMessage {
    /// Why the message cannot go on; each has its close code.
    enum Failure: Equatable {
        /// Over max_message_size (1009).
        case tooBig
        /// The server's budget of partial messages cannot hold it (1009).
        case overBudget
        /// Compressed data that does not inflate (1007).
        case corrupt
        /// Text that is not UTF-8 (1007).
        case invalidUTF8
    }

    /// What every message of a connection is checked against.
    struct Limits {
        var maxSize: Int
        var validateUTF8: Bool
        var deflate: PerMessageDeflate?
        var budget: WebSocketMessageBudget
    }

    let isText: Bool
    let compressed: Bool
    /// When its first frame arrived: it must be whole within message_timeout.
    let started: NIODeadline
    /// The bytes kept: the message so far, or in fragments mode the current frame's.
    private(set) var data: ByteBuffer
    /// Where the current frame's bytes start in `data`.
    private var frameStart = 0
    /// Compressed bytes received so far.
    private var wireBytes: UInt64 = 0
    private var utf8 = UTF8Validator()
    /// The budget `data` holds; made when it first grows, given back when the message (every
    /// copy of it) is gone, whichever way it goes.
    private var share: WebSocketMessageBudgetShare?

    init(isText: Bool, compressed: Bool, started: NIODeadline, allocator: ByteBufferAllocator) {
        self.isText = isText
        self.compressed = compressed
        self.started = started
        data = allocator.buffer(capacity: 0)
    }

    /// Whether nothing of the message is kept yet.
    var isEmpty: Bool { data.readableBytes == 0 }

    /// The current frame's bytes in `data`.
    var frame: ByteBuffer { data.getSlice(at: frameStart, length: data.writerIndex - frameStart) ?? ByteBuffer() }

    /// A frame of `length` payload bytes starts. Uncompressed, its length tells at once whether
    /// the message fits; compressed, what arrives is bounded too (with deflate's worst-case
    /// growth of incompressible data), so a stream that inflates to nothing cannot go on forever.
    mutating func frameStarted(length: UInt64, limits: Limits) -> Failure? {
        frameStart = data.writerIndex
        let limit = UInt64(limits.maxSize)
        if compressed {
            wireBytes += min(length, UInt64(Int.max))
            return wireBytes > limit + (limit >> 10) + 64 ? .tooBig : nil
        }
        return length > limit - UInt64(data.readableBytes) ? .tooBig : nil
    }

    /// Checks and keeps a piece of the current frame; `final` when it ends the message.
    mutating func append(_ chunk: WebSocketPayloadChunk, final: Bool, limits: Limits, allocator: ByteBufferAllocator) -> Failure? {
        let start = data.writerIndex
        if compressed, let deflate = limits.deflate {
            let input = chunk.unmasked(allocator: allocator)
            let budget = limits.budget
            var share = self.share
            let failure = deflate.inflate(input, final: final, into: &data, limit: limits.maxSize) { capacity in
                let taken = share ?? WebSocketMessageBudgetShare(budget: budget)
                share = taken
                return taken.resize(to: capacity)
            }
            self.share = share
            switch failure {
            case nil: break
            case .tooBig: return .tooBig
            case .corrupt: return .corrupt
            case .refused: return .overBudget
            }
        } else {
            let capacity = data.capacity
            data.reserveCapacity(minimumWritableBytes: chunk.bytes.readableBytes)
            if data.capacity != capacity {
                let share = self.share ?? WebSocketMessageBudgetShare(budget: limits.budget)
                self.share = share
                guard share.resize(to: data.capacity) else { return .overBudget }
            }
            chunk.unmask(into: &data)
        }
        guard isText && limits.validateUTF8 else { return nil }
        let valid = data.withUnsafeReadableBytes { utf8.feed(UnsafeRawBufferPointer(rebasing: $0[(start - data.readerIndex)...])) }
        return valid && (!final || utf8.isComplete) ? nil : .invalidUTF8
    }

    /// Checks a whole frame that is not kept (see `WebSocketStateMachine`); `final` when it
    /// ends the message.
    mutating func check(_ payload: ByteBuffer, final: Bool, limits: Limits) -> Failure? {
        guard isText && limits.validateUTF8 else { return nil }
        let valid = payload.withUnsafeReadableBytes { utf8.feed($0) }
        return valid && (!final || utf8.isComplete) ? nil : .invalidUTF8
    }

    /// Fragments mode: the frame was delivered and nothing of it needs keeping.
    mutating func discardFrame() {
        data.clear()
        frameStart = 0
    }
}
