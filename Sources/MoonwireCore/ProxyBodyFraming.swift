// How a forwarded request's body is framed upstream, and what tells: the client's length, its
// chunking, the whole body already read, or (HTTP/2 without content-length) only the body.
import NIOCore

/// How a forwarded request's body is framed upstream.
enum ProxyBodyFraming: Equatable {
    case none
    case length(Int)
    case chunked

    /// The framing `request` tells by its head (or its whole body); nil when only the body
    /// itself can tell (HTTP/2 without content-length).
    static func known(for request: HTTPRequest) -> ProxyBodyFraming? {
        guard request.bodyStream != nil else {
            let sendsLength = request.body.readableBytes > 0 || carriesBody(request)
            return sendsLength ? .length(request.body.readableBytes) : ProxyBodyFraming.none
        }
        if let length = request.headers.first(name: "content-length").flatMap({ Int($0) }) { return .length(length) }
        if request.version == "2" { return nil }
        return request.headers.contains(name: "transfer-encoding") ? .chunked : ProxyBodyFraming.none
    }

    /// The framing of a streamed body that turned out empty.
    static func empty(for request: HTTPRequest) -> ProxyBodyFraming {
        carriesBody(request) ? .length(0) : .none
    }

    /// A method whose requests carry a body, sent with a length even when it is empty.
    private static func carriesBody(_ request: HTTPRequest) -> Bool {
        request.hasMethod("POST") || request.hasMethod("PUT") || request.hasMethod("PATCH")
    }

    /// A piece of the body as it goes upstream: in a chunk when the body is chunked.
    func framed(_ piece: ByteBuffer) -> ByteBuffer {
        guard self == .chunked else { return piece }
        var chunk = ByteBuffer()
        chunk.reserveCapacity(piece.readableBytes + 16)
        HTTP1ResponseSerializer.writeChunk(piece, into: &chunk)
        return chunk
    }
}

extension HTTPRequest {
    /// Whether the method is `name`, lengths compared first: a method of another length then
    /// costs no comparison of text, where String's == on two unequal strings cost about 30
    /// instructions each (a forwarded GET asked four).
    @inline(__always)
    func hasMethod(_ name: String) -> Bool {
        method.utf8.count == name.utf8.count && method == name
    }
}
