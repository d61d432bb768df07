// The server opens its listening sockets itself and hands the descriptors to NIO
// (ServerBootstrap.withBoundSocket), instead of letting NIO bind them: it then knows each
// listener's descriptor, which a binary upgrade passes on to the next process, and the same
// path takes a descriptor inherited from the previous one.
import Glibc
import NIOCore

/// A listening TCP socket's descriptor, outside NIO.
public enum ListeningDescriptor {
    /// Opens a socket on `host:port` (SO_REUSEADDR, close-on-exec) and listens with `backlog`.
    static func open(host: String, port: Int, backlog: Int) throws -> CInt {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let descriptor = socket(address.protocol.rawValue, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let bound = address.withSockAddr { bind(descriptor, $0, socklen_t($1)) }
        guard bound == 0, Glibc.listen(descriptor, CInt(backlog)) == 0 else {
            let code = errno
            close(descriptor)
            throw IOError(errnoCode: code, reason: bound == 0 ? "listen" : "bind")
        }
        return descriptor
    }

    /// Sets the backlog again: NIO listens with its own (128) on a descriptor it is handed.
    static func setBacklog(_ descriptor: CInt, _ backlog: Int) {
        _ = Glibc.listen(descriptor, CInt(backlog))
    }

    /// The port a listening descriptor is bound to (nil when it is not a listening TCP socket):
    /// a descriptor inherited from the previous process is checked before it is used.
    public static func listeningPort(of descriptor: CInt) -> Int? {
        var accepting: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting == 1 else { return nil }
        var storage = sockaddr_storage()
        var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &size) }
        }
        guard named == 0 else { return nil }
        switch CInt(storage.ss_family) {
        case AF_INET: return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
        case AF_INET6: return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        default: return nil
        }
    }
}
