// The HTTP/1.1 client of `moonwire test`: one kept-alive loopback connection, requests sent as
// the caller wrote them, answers read with the outbound client's own response reader.
import NIOCore

/// A response as a loopback client read it.
public struct LoopbackResponse: Sendable {
    public let status: Int
    /// The fields in the order they came (names as sent).
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]
}

/// A blocking HTTP/1.1 client over one kept-alive connection to a loopback port, reopened
/// when the server closed it. For one thread at a time.
public final class LoopbackHTTPClient {
    public let port: Int
    /// Seconds to wait for each part of an answer.
    public var timeout: Double
    private var socket: LoopbackSocket?

    public init(port: Int, timeout: Double = 30) {
        self.port = port
        self.timeout = timeout
    }

    /// Sends a serialized request and reads its answer. A kept-alive connection the server
    /// closed meanwhile is reopened, once, when nothing of the answer had come.
    public func exchange(_ request: [UInt8], isHead: Bool = false) throws(LoopbackError) -> LoopbackResponse {
        let reused = socket?.isOpen == true
        switch attempt(request, isHead: isHead) {
        case .success(let response):
            return response
        case .failure(let failure):
            guard reused, failure.nothingRead else { throw failure.error }
            return try attempt(request, isHead: isHead).mapError(\.error).get()
        }
    }

    /// Closes the connection.
    public func close() {
        socket?.close()
        socket = nil
    }

    /// The largest body read.
    static let maxBodySize = 64 * 1024 * 1024

    private struct Failure: Error {
        let error: LoopbackError
        /// Nothing of the answer came: a kept-alive connection the server had closed.
        let nothingRead: Bool
    }

    private func attempt(_ request: [UInt8], isHead: Bool) -> Result<LoopbackResponse, Failure> {
        let socket: LoopbackSocket
        do throws(LoopbackError) {
            if let open = self.socket, open.isOpen { socket = open } else { socket = try LoopbackSocket(port: port) }
        } catch {
            return .failure(Failure(error: error, nothingRead: false))
        }
        self.socket = socket
        func failed(_ error: LoopbackError, nothingRead: Bool = false) -> Result<LoopbackResponse, Failure> {
            close()
            return .failure(Failure(error: error, nothingRead: nothingRead))
        }
        do throws(LoopbackError) {
            try socket.send(request)
        } catch {
            return failed(error, nothingRead: true)
        }
        var reader = HTTP1ResponseReader(maxBodySize: Self.maxBodySize, isHead: isHead)
        var readAny = false
        while true {
            do throws(HTTP1ResponseReader.ReadError) {
                if case .complete(let head, let body, let reusable) = try reader.read(&socket.received) {
                    if !reusable { close() }
                    return .success(Self.response(head, body))
                }
            } catch {
                return failed(LoopbackError("malformed response: \(error)"))
            }
            do throws(LoopbackError) {
                guard try socket.receive(timeout: timeout) else {
                    if let head = reader.closed() {
                        close()
                        return .success(Self.response(head, reader.bodySoFar))
                    }
                    return failed(LoopbackError("the server closed the connection before answering"), nothingRead: !readAny)
                }
                readAny = true
            } catch {
                return failed(error)
            }
        }
    }

    private static func response(_ head: OutboundResponseHead, _ body: ByteBuffer) -> LoopbackResponse {
        var headers: [(name: String, value: String)] = []
        head.forEachField { name, value in
            headers.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return LoopbackResponse(status: head.status, headers: headers, body: Array(body.readableBytesView))
    }
}
