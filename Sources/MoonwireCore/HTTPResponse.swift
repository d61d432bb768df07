// The response model shared by every protocol.
import NIOCore
import NIOHTTP1

/// A complete response: a status, headers, and a body in memory or on disk.
public struct HTTPResponse: Sendable {
    /// Where the body comes from.
    public enum Body: Sendable {
        /// Bytes already in memory.
        case bytes(ByteBuffer)
        /// A file sent from disk without reading it into memory; resolved like a static file,
        /// relative paths against the www root.
        case file(String)
    }

    /// The status code, 100...999.
    public var status: Int
    /// Header fields; `content-length`, `date` and `server` are added when written.
    public var headers: HTTPHeaders
    /// The body; ignored for HEAD requests and for statuses that carry none.
    public var body: Body

    /// Creates a response.
    public init(status: Int = 200, headers: HTTPHeaders = [:], body: Body = .bytes(ByteBuffer())) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A plain-text response, for errors the server answers itself.
    public static func plain(_ status: Int, _ text: String, headers: HTTPHeaders = [:]) -> HTTPResponse {
        var headers = headers
        headers.replaceOrAdd(name: "content-type", value: "text/plain; charset=utf-8")
        return HTTPResponse(status: status, headers: headers, body: .bytes(ByteBuffer(string: text)))
    }

    /// The standard text of a status ("404 Not Found\n"), as the body of a server error page.
    public static func statusPage(_ status: Int) -> HTTPResponse {
        .plain(status, statusText(status))
    }

    /// "404 Not Found\n".
    public static func statusText(_ status: Int) -> String {
        "\(status) \(HTTPResponseStatus(statusCode: status).reasonPhrase)\n"
    }
}

extension HTTPResponse {
    /// Whether responses of `status` never carry a body (RFC 9110 section 6.4.1). Asked of
    /// the number: an `HTTPResponseStatus` built only to ask cost about 65 instructions.
    static func forbidsBody(_ status: Int) -> Bool {
        switch status {
        case 100..<200, 204, 304: true
        default: false
        }
    }
}

extension HTTPResponseStatus {
    /// `HTTPResponse.forbidsBody` of this status.
    var forbidsBody: Bool { HTTPResponse.forbidsBody(Int(code)) }
}
