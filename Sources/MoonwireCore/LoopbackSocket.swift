// A blocking TCP connection to a port on 127.0.0.1, for `moonwire test`: its test files call
// the server they test as a real client would, over a real socket, from a thread of their own
// (never an event loop), so that blocking while the server answers costs nothing.
import Glibc
import NIOCore

/// What a loopback client met: the connection failed, closed, or the answer was late or bad.
public struct LoopbackError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// A blocking client socket to a loopback port; whatever it read and did not use stays in
/// `received`.
final class LoopbackSocket {
    private var fd: Int32
    var received = ByteBuffer()

    init(port: Int) throws(LoopbackError) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LoopbackError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close()
            throw LoopbackError("cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close() }

    var isOpen: Bool { fd >= 0 }

    func close() {
        guard fd >= 0 else { return }
        _ = Glibc.close(fd)
        fd = -1
    }

    /// Writes every byte.
    func send(_ bytes: [UInt8]) throws(LoopbackError) {
        guard fd >= 0 else { throw LoopbackError("the connection is closed") }
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw LoopbackError("the server closed the connection (send: errno \(errno))") }
            sent += count
        }
    }

    /// Reads what arrives into `received`, waiting at most `timeout` seconds. False when the
    /// peer closed the connection; throws when nothing came in time.
    func receive(timeout: Double) throws(LoopbackError) -> Bool {
        guard fd >= 0 else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(max(0, timeout) * 1000))
        guard ready > 0 else { throw LoopbackError("no answer within \(timeout) s") }
        // Everything before was taken: start over at the front rather than grow.
        if received.readableBytes == 0 { received.clear() }
        let count = received.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 * 1024) { raw in
            max(0, recv(fd, raw.baseAddress, raw.count, 0))
        }
        if count == 0 { close() }
        return count > 0
    }
}
