// The Redis protocol (RESP) through hiredis: its reader turns bytes into replies and its
// formatter turns a command's arguments into bytes. hiredis does no I/O here; the bytes come
// and go on a NIO channel (RedisConnection), so a connection costs no thread.
import CHiredis
import NIOCore

/// One reply of Redis, as RESP has them.
public enum RedisReply: Equatable, Sendable {
    /// `+OK`: a status line.
    case status(String)
    /// `$n`: a bulk string, binary-safe.
    case bulk([UInt8])
    case integer(Int64)
    /// `$-1` or `*-1`: no value.
    case null
    case array([RedisReply])
    /// `-ERR ...`: the command failed; the connection is fine.
    case error(String)
}

/// RESP's reader: bytes in, whole replies out, in order. Confined to one connection.
public final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>

    public init() {
        reader = redisReaderCreate()
        // hiredis keeps at most this much unused buffer; 0 would keep everything.
        reader.pointee.maxbuf = 64 * 1024
    }

    deinit { redisReaderFree(reader) }

    /// Adds bytes read from the connection.
    public func feed(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress, !raw.isEmpty else { return }
            _ = redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), raw.count)
        }
    }

    /// The next whole reply, nil when more bytes are needed. Throws on bytes that are not
    /// RESP: the stream cannot be trusted after that, so the connection must close.
    public func next() throws(RedisProtocolError) -> RedisReply? {
        var object: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &object) == REDIS_OK else {
            throw RedisProtocolError(reason: String(cString: mw_redis_reader_error(reader)))
        }
        guard let object else { return nil }
        defer { freeReplyObject(object) }
        return Self.convert(object.assumingMemoryBound(to: redisReply.self).pointee)
    }

    private static func convert(_ reply: redisReply) -> RedisReply {
        let bytes = { () -> [UInt8] in
            guard let str = reply.str, reply.len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: reply.len))
        }
        switch reply.type {
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int64(reply.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<reply.elements).map { convert(reply.element[$0]!.pointee) })
        case REDIS_REPLY_NIL: return .null
        default: return .bulk(bytes())
        }
    }
}

/// Bytes from the server that are not RESP.
public struct RedisProtocolError: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { "protocol error: \(reason)" }
}

/// Commands as RESP bytes (an array of bulk strings), through hiredis' formatter.
public enum RedisCommand {
    /// Appends `arguments` (the command's name first) to `buffer`.
    public static func format(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        var target: UnsafeMutablePointer<CChar>?
        let lengths = arguments.map(\.count)
        let count = withPointers(arguments) { pointers in
            redisFormatCommandArgv(&target, Int32(arguments.count), pointers, lengths)
        }
        guard count > 0, let target else { return }
        defer { redisFreeCommand(target) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(count)))
    }

    /// Calls `body` with a C array of pointers to each argument's bytes (valid during the call).
    private static func withPointers<R>(
        _ arguments: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>) -> R
    ) -> R {
        let total = arguments.reduce(0) { $0 + $1.count }
        var joined = [UInt8]()
        joined.reserveCapacity(max(total, 1))
        for argument in arguments { joined.append(contentsOf: argument) }
        return joined.withUnsafeBufferPointer { storage in
            let base = UnsafeRawPointer(storage.baseAddress!).assumingMemoryBound(to: CChar.self)
            let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(arguments.count, 1))
            defer { pointers.deallocate() }
            var offset = 0
            for (index, argument) in arguments.enumerated() {
                pointers[index] = base + offset
                offset += argument.count
            }
            return body(pointers)
        }
    }
}
