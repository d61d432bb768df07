// The WebSocket client of `moonwire test`: the opening handshake and RFC 6455 frames (masked,
// as a client must send them) over a blocking loopback connection. Pings are answered as a
// browser would; fragments are joined.
import Foundation
import NIOCore

/// A blocking WebSocket client connection to a loopback port.
public final class LoopbackWebSocket {
    /// What `receive` got.
    public enum Message: Equatable {
        case text(String)
        case binary([UInt8])
        /// The server closed, with its code and reason.
        case closed(code: Int, reason: String)
    }

    private let socket: LoopbackSocket
    private var closed = false

    /// Opens a connection and makes the handshake; `request` is the upgrade request's head up
    /// to (not including) the blank line, without the WebSocket fields, which are added here.
    /// Throws when the server answers anything but 101, with that status.
    public init(port: Int, requestHead: String, timeout: Double) throws(LoopbackError) {
        socket = try LoopbackSocket(port: port)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let head = requestHead + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \(key)\r\n\r\n"
        try socket.send(Array(head.utf8))
        while true {
            let end: Int? = socket.received.withUnsafeReadableBytes { HTTP1HeadParser.headEnd(in: $0, from: 0) }
            if let end {
                let answer = socket.received.readString(length: end) ?? ""
                let status = answer.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
                guard status == 101 else { throw LoopbackError("the WebSocket handshake got status \(status)") }
                return
            }
            guard try socket.receive(timeout: timeout) else { throw LoopbackError("the server closed the connection during the handshake") }
        }
    }

    /// Sends a text message in one frame.
    public func send(text: String) throws(LoopbackError) {
        try sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    /// Sends a binary message in one frame.
    public func send(binary: [UInt8]) throws(LoopbackError) {
        try sendFrame(opcode: 0x2, payload: binary)
    }

    /// The next message, waiting at most `timeout` seconds for it; after the server's close,
    /// `.closed` again.
    public func receive(timeout: Double) throws(LoopbackError) -> Message {
        var fragments: [UInt8] = []
        var fragmentsOpcode: UInt8 = 0
        while true {
            guard let frame = nextFrame() else {
                guard !closed else { return .closed(code: 1006, reason: "") }
                guard try socket.receive(timeout: timeout) else {
                    closed = true
                    return .closed(code: 1006, reason: "")
                }
                continue
            }
            let (fin, opcode, payload) = frame
            switch opcode {
            case 0x8:
                let code = payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : 1005
                if !closed { try? sendFrame(opcode: 0x8, payload: Array(payload.prefix(2))) }
                closed = true
                socket.close()
                return .closed(code: code, reason: String(decoding: payload.dropFirst(2), as: UTF8.self))
            case 0x9:
                try sendFrame(opcode: 0xA, payload: payload)
            case 0xA:
                continue
            default:
                if opcode != 0 { fragmentsOpcode = opcode }
                fragments += payload
                guard fin else { continue }
                return fragmentsOpcode == 0x2 ? .binary(fragments) : .text(String(decoding: fragments, as: UTF8.self))
            }
        }
    }

    /// Sends a close frame with `code` and closes the connection.
    public func close(code: Int = 1000) {
        guard !closed else { return }
        closed = true
        try? sendFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])
        socket.close()
    }

    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws(LoopbackError) {
        guard !closed || opcode == 0x8 else { throw LoopbackError("the WebSocket is closed") }
        var frame: [UInt8] = [0x80 | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: frame += [0x80 | 127] + (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        try socket.send(frame)
    }

    /// Takes one whole frame out of what was received (a server's frames are unmasked).
    private func nextFrame() -> (fin: Bool, opcode: UInt8, payload: [UInt8])? {
        let bytes = socket.received.readableBytesView
        guard bytes.count >= 2 else { return nil }
        let first = bytes[bytes.startIndex], second = bytes[bytes.startIndex + 1]
        var length = Int(second & 0x7F)
        var offset = 2
        if length >= 126 {
            let size = length == 126 ? 2 : 8
            guard bytes.count >= 2 + size else { return nil }
            length = bytes.dropFirst(2).prefix(size).reduce(0) { $0 << 8 | Int($1) }
            offset += size
        }
        guard bytes.count >= offset + length else { return nil }
        let payload = Array(bytes.dropFirst(offset).prefix(length))
        socket.received.moveReaderIndex(forwardBy: offset + length)
        return (first & 0x80 != 0, first & 0x0F, payload)
    }
}
