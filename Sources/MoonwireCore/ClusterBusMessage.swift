// What nodes say to each other on the Redis bus, and on which Redis channels. A frame is
// compact binary (a broadcast of a short chat line costs it a dozen bytes), starts with a
// version byte, so a node can refuse what a newer one says instead of misreading it, and
// names the node that published it, so a node skips its own messages when Redis hands them
// back (its own clients had them at once). Anything can be PUBLISHed on a Redis channel:
// decoding checks every length against what is left, and that text is UTF-8, and throws a
// reason, never traps.
import NIOCore

/// The Redis channels of one cluster. Redis' pub/sub ignores the database number, so the
/// names carry it: clusters on different databases of one Redis do not hear each other.
public struct ClusterTopics: Equatable, Sendable {
    /// `moonwire:<db>:`.
    public let prefix: String

    public init(database: Int) { prefix = "moonwire:\(database):" }

    /// The channel every node listens on: broadcasts without a channel, writes to a GUID,
    /// disconnect_all.
    public var nodes: String { prefix + "nodes" }

    /// The Redis channel of a broadcast channel; nodes listen on it while one of their clients
    /// is a member.
    public func channel(_ name: String) -> String { prefix + "channel:" + name }

    /// The broadcast channel a Redis channel carries, nil for `nodes` (and names of no channel).
    public func channelName(of topic: String) -> String? {
        let channelPrefix = prefix + "channel:"
        guard topic.hasPrefix(channelPrefix) else { return nil }
        return String(topic.dropFirst(channelPrefix.count))
    }
}

/// A broadcast as it crosses nodes; the channel is the Redis channel it travels on.
public struct ClusterBroadcast: Equatable, Sendable {
    public var payload: ByteBuffer
    public var binary = false
    /// Only connections that agreed on this subprotocol.
    public var subprotocol: String?
    /// Only these GUIDs (nil: everyone).
    public var guids: [String]?
    /// Not these GUIDs.
    public var exclude: [String] = []

    public init(payload: ByteBuffer, binary: Bool = false, subprotocol: String? = nil, guids: [String]? = nil, exclude: [String] = []) {
        self.payload = payload
        self.binary = binary
        self.subprotocol = subprotocol
        self.guids = guids
        self.exclude = exclude
    }
}

/// What a frame asks the other nodes to do.
public enum ClusterBusMessage: Equatable, Sendable {
    case broadcast(ClusterBroadcast)
    /// moonwire.write to a GUID this node does not have.
    case write(guid: String, payload: ByteBuffer, binary: Bool)
    case disconnectAll(code: UInt16, reason: String)
}

/// One message on the bus and the node it comes from.
///
/// Version 1: `01`, kind (`01` broadcast, `02` write, `03` disconnect_all), the origin (8
/// bytes), then for a broadcast flags (1 binary, 2 subprotocol, 4 GUID list), the subprotocol,
/// the GUID list, the exclude list, and the payload to the end; for a write flags (1 binary),
/// the GUID and the payload to the end; for disconnect_all the code (2 bytes) and the reason to
/// the end. Strings are a LEB128 length and UTF-8; lists a LEB128 count and strings.
public struct ClusterBusFrame: Equatable, Sendable {
    public static let version: UInt8 = 1
    /// The publishing node's id, random per process.
    public var origin: UInt64
    public var message: ClusterBusMessage

    public init(origin: UInt64, message: ClusterBusMessage) {
        self.origin = origin
        self.message = message
    }

    private enum Kind: UInt8 {
        case broadcast = 1, write, disconnectAll
    }

    private static let binaryFlag: UInt8 = 1, subprotocolFlag: UInt8 = 2, guidsFlag: UInt8 = 4

    /// The frame's bytes.
    public func encoded() -> ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(Self.version)
        switch message {
        case .broadcast(let broadcast):
            out.writeInteger(Kind.broadcast.rawValue)
            out.writeInteger(origin)
            var flags: UInt8 = broadcast.binary ? Self.binaryFlag : 0
            if broadcast.subprotocol != nil { flags |= Self.subprotocolFlag }
            if broadcast.guids != nil { flags |= Self.guidsFlag }
            out.writeInteger(flags)
            if let subprotocol = broadcast.subprotocol { Self.write(subprotocol, to: &out) }
            if let guids = broadcast.guids { Self.write(guids, to: &out) }
            Self.write(broadcast.exclude, to: &out)
            out.writeImmutableBuffer(broadcast.payload)
        case .write(let guid, let payload, let binary):
            out.writeInteger(Kind.write.rawValue)
            out.writeInteger(origin)
            out.writeInteger(binary ? Self.binaryFlag : 0)
            Self.write(guid, to: &out)
            out.writeImmutableBuffer(payload)
        case .disconnectAll(let code, let reason):
            out.writeInteger(Kind.disconnectAll.rawValue)
            out.writeInteger(origin)
            out.writeInteger(code)
            out.writeString(reason)
        }
        return out
    }

    /// Reads a frame; throws why the bytes are not one.
    public init(decoding bytes: ByteBuffer) throws(ClusterBusFrameError) {
        var input = bytes
        guard let version = input.readInteger(as: UInt8.self) else { throw .init("an empty message") }
        guard version == Self.version else {
            throw .init("version \(version), this node speaks \(Self.version) (a node of another Moonwire release?)")
        }
        guard let kindByte = input.readInteger(as: UInt8.self), let origin = input.readInteger(as: UInt64.self) else {
            throw .init("cut short in its header")
        }
        guard let kind = Kind(rawValue: kindByte) else { throw .init("unknown kind \(kindByte)") }
        self.origin = origin
        switch kind {
        case .broadcast:
            let flags = try Self.readFlags(&input)
            guard flags & ~(Self.binaryFlag | Self.subprotocolFlag | Self.guidsFlag) == 0 else { throw .init("unknown flags \(flags)") }
            let subprotocol = flags & Self.subprotocolFlag != 0 ? try Self.readString(&input) : nil
            let guids = flags & Self.guidsFlag != 0 ? try Self.readList(&input) : nil
            let exclude = try Self.readList(&input)
            if flags & Self.binaryFlag == 0 { try Self.checkText(input) }
            message = .broadcast(
                ClusterBroadcast(
                    payload: input, binary: flags & Self.binaryFlag != 0, subprotocol: subprotocol, guids: guids, exclude: exclude))
        case .write:
            let flags = try Self.readFlags(&input)
            guard flags & ~Self.binaryFlag == 0 else { throw .init("unknown flags \(flags)") }
            let guid = try Self.readString(&input)
            if flags & Self.binaryFlag == 0 { try Self.checkText(input) }
            message = .write(guid: guid, payload: input, binary: flags & Self.binaryFlag != 0)
        case .disconnectAll:
            guard let code = input.readInteger(as: UInt16.self) else { throw .init("cut short in its close code") }
            message = .disconnectAll(code: code, reason: input.readString(length: input.readableBytes) ?? "")
        }
    }

    private static func readFlags(_ input: inout ByteBuffer) throws(ClusterBusFrameError) -> UInt8 {
        guard let flags = input.readInteger(as: UInt8.self) else { throw .init("cut short in its flags") }
        return flags
    }

    /// A text message goes out in a WebSocket text frame, which clients fail unless it is UTF-8.
    private static func checkText(_ payload: ByteBuffer) throws(ClusterBusFrameError) {
        var validator = UTF8Validator()
        let valid = payload.withUnsafeReadableBytes { validator.feed($0) }
        guard valid, validator.isComplete else { throw .init("a text message that is not UTF-8") }
    }

    private static func write(_ string: String, to out: inout ByteBuffer) {
        writeLength(string.utf8.count, to: &out)
        out.writeString(string)
    }

    private static func write(_ list: [String], to out: inout ByteBuffer) {
        writeLength(list.count, to: &out)
        for string in list { write(string, to: &out) }
    }

    private static func writeLength(_ length: Int, to out: inout ByteBuffer) {
        var rest = UInt64(length)
        while rest >= 0x80 {
            out.writeInteger(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        out.writeInteger(UInt8(rest))
    }

    /// A LEB128 length no larger than the bytes left (a list's count is at most that too: each
    /// string takes a byte at least).
    private static func readLength(_ input: inout ByteBuffer) throws(ClusterBusFrameError) -> Int {
        var value = 0
        for shift in stride(from: 0, through: 28, by: 7) {
            guard let byte = input.readInteger(as: UInt8.self) else { throw .init("cut short in a length") }
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                guard value <= input.readableBytes else { throw .init("a length of \(value) with \(input.readableBytes) bytes left") }
                return value
            }
        }
        throw .init("a length longer than 5 bytes")
    }

    private static func readString(_ input: inout ByteBuffer) throws(ClusterBusFrameError) -> String {
        let length = try readLength(&input)
        guard let bytes = input.readBytes(length: length), let string = String(validating: bytes, as: UTF8.self) else {
            throw .init("a string that is not UTF-8")
        }
        return string
    }

    private static func readList(_ input: inout ByteBuffer) throws(ClusterBusFrameError) -> [String] {
        let count = try readLength(&input)
        var list: [String] = []
        list.reserveCapacity(count)
        for _ in 0..<count { list.append(try readString(&input)) }
        return list
    }
}

/// Why bytes on the bus are not a frame.
public struct ClusterBusFrameError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
