// What a failed outbound request tells the script: one short sentence naming the peer and the
// cause (`connect to 127.0.0.1:9 refused`, `timeout after 2 s`, `cannot resolve
// nowhere.invalid: no such host`, as moonwire.tcp says it), instead of the nested error values
// of NIO, NIOSSL and AsyncHTTPClient.
// Not Lua-specific; it sits next to the collector it serves (see HTTPResponseCollector.swift).
import AsyncHTTPClient
import MoonwireCore
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// The message for an outbound request's failure.
enum HTTPClientFailure {
    /// `host` and `port` are the peer the failed attempt went to; `timeout` the request's total
    /// timeout in seconds, for the message of a deadline that passed.
    static func message(for error: Error, host: String, port: Int, timeout: Double) -> String {
        let peer = "\(host):\(port)"
        switch error {
        case let error as HTTPResponseCollector.BodyTooLarge:
            return error.description
        case let error as HTTPClientError:
            return message(for: error, peer: peer, timeout: timeout)
        case let error as NIOConnectionError:
            if error.dnsAError != nil || error.dnsAAAAError != nil, error.connectionErrors.isEmpty {
                return TCPSocketError.unresolved(host: error.host).description
            }
            if let first = error.connectionErrors.first?.error { return connectMessage(first, peer: peer) }
            return "connect to \(peer) failed: \(error)"
        case let error as SocketAddressError:
            if case .unknown(let host, _) = error { return TCPSocketError.unresolved(host: host).description }
            return TCPSocketError.unresolved(host: host).description
        case let error as NIOSSLError:
            return "TLS handshake with \(peer) failed: \(tlsReason(error))"
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return "TLS handshake with \(peer) failed: certificate does not match host \(host)"
        case is IOError, is ChannelError:
            return connectMessage(error, peer: peer)
        default:
            return "request to \(peer) failed: \(error)"
        }
    }

    /// "2" for 2 seconds, "0.5" for half of one.
    static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    private static func message(for error: HTTPClientError, peer: String, timeout: Double) -> String {
        switch error {
        case .deadlineExceeded, .readTimeout, .writeTimeout:
            "timeout after \(seconds(timeout)) s"
        case .connectTimeout:
            "connect to \(peer) timed out after \(seconds(OutboundHTTP.connectTimeout)) s"
        case .tlsHandshakeTimeout:
            "TLS handshake with \(peer) timed out"
        case .remoteConnectionClosed:
            "connection closed by \(peer) before the response ended"
        case .cancelled:
            "request to \(peer) cancelled"
        case .alreadyShutdown:
            "request to \(peer) refused: the server is stopping"
        default:
            "request to \(peer) failed: \(error.shortDescription)"
        }
    }

    private static func connectMessage(_ error: Error, peer: String) -> String {
        switch error {
        case let error as IOError where error.errnoCode == ECONNREFUSED:
            "connect to \(peer) refused"
        case let error as IOError where error.errnoCode == ENETUNREACH || error.errnoCode == EHOSTUNREACH:
            "connect to \(peer) failed: unreachable"
        case ChannelError.connectTimeout:
            "connect to \(peer) timed out after \(seconds(OutboundHTTP.connectTimeout)) s"
        default:
            "connect to \(peer) failed: \(error)"
        }
    }

    /// BoringSSL's reason, in words for the common one.
    private static func tlsReason(_ error: NIOSSLError) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return "certificate verify failed" }
        return text
    }
}
