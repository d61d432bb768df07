// The contract between a forward and the hook that sees the upstream's head before the client
// does (OnAfterForwardHTTP): what came (a head, or a failure with its status), and what the hook
// decided (let it through as changed, or answer instead). Interim heads and the body do not go
// through it.
import NIOHTTP1

/// What the upstream gave, for the hook that may change it (OnAfterForwardHTTP).
public enum ProxyOutcome {
    case head(status: Int, headers: HTTPHeaders)
    /// The forward failed: 502 (no connection, a bad answer) or 504 (no answer in time).
    case failed(status: Int, message: String)
}

/// What the hook decided.
public enum ProxyDecision {
    /// Send the head (as the hook left it) and the upstream's body.
    case forward(status: Int, headers: HTTPHeaders)
    /// Answer with this instead; the upstream's answer is dropped.
    case answer(HTTPResponse)
}

/// Called with the upstream's head or failure before anything reaches the client.
public typealias ProxyHook = (ProxyOutcome, @escaping (ProxyDecision) -> Void) -> Void
