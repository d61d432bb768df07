// How a WebSocket's HTTP/2 stream ends (RFC 8441 section 5): where RFC 6455 closes the TCP
// connection, the stream ends instead, the orderly way with END_STREAM on each side, and with
// RST_STREAM(CANCEL) when the client does not end its side in time. The connection and its
// other streams go on. The rules are here, without channels; HTTP2WebSocketStream carries
// them out.

struct HTTP2WebSocketStreamState: Equatable {
    /// What the stream's handler does next.
    enum Action: Equatable {
        case none
        /// Send END_STREAM (an empty DATA frame); the stream closes once the client has too.
        case endStream
        /// Send END_STREAM and give the client `grace` to end its side.
        case endStreamAndWait
        /// Reset the stream (RST_STREAM(CANCEL)).
        case reset
    }

    /// We sent END_STREAM.
    private(set) var ended = false
    /// The client sent END_STREAM.
    private(set) var clientEnded = false

    /// The WebSocket is done on the server's side (its close: the handshake done, a protocol
    /// error, a timeout).
    mutating func closeRequested() -> Action {
        guard !ended else { return .none }
        ended = true
        return clientEnded ? .endStream : .endStreamAndWait
    }

    /// The client ended its side: like a TCP connection's end, the WebSocket ends with it.
    mutating func clientEndedStream() -> Action {
        clientEnded = true
        guard !ended else { return .none }
        ended = true
        return .endStream
    }

    /// The grace after our END_STREAM passed.
    func graceExpired() -> Action {
        ended && !clientEnded ? .reset : .none
    }

    /// Whether the stream takes no more DATA from the server.
    var refusesWrites: Bool { ended }

    /// How long a client has to end its side after ours.
    static let grace = 2.0
}
