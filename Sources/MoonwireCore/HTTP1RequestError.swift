// Requests the HTTP/1.x decoder refuses for reasons NIO's HTTPParserError has no case for: a
// request line over the head's budget (414, not 431) and the Host rules of RFC 9112 section 3.2.
// Each carries the status it is answered with and the message the log line and OnError get.

/// A request the HTTP/1.x decoder refuses, with the status it is answered with.
struct HTTP1RequestError: Error, Equatable, CustomStringConvertible {
    /// The status of the answer.
    let status: Int
    /// What the log line and OnError say.
    let description: String

    /// The request line alone does not fit in the head's budget (RFC 9112 section 3: 414).
    static func targetTooLong(limit: Int) -> HTTP1RequestError {
        HTTP1RequestError(status: 414, description: "request line longer than \(limit) bytes")
    }

    /// An HTTP/1.1 request without a Host field.
    static let missingHost = HTTP1RequestError(status: 400, description: "HTTP/1.1 request without a Host header")

    /// A request with more than one Host field.
    static let duplicateHost = HTTP1RequestError(status: 400, description: "more than one Host header")

    /// A Host field that is not `uri-host [ ":" port ]` (`HostSyntax`); the value is quoted,
    /// cut to 100 bytes.
    static func invalidHost(_ value: String) -> HTTP1RequestError {
        HTTP1RequestError(status: 400, description: "invalid Host header \"\(String(decoding: value.utf8.prefix(100), as: UTF8.self))\"")
    }
}
