// The certificates TLS handshakes choose from: each listener's own, and those of virtual
// hosts picked by the SNI name. Replaceable while the server runs, so a reload brings new
// certificates to new handshakes without closing open connections.
import NIOConcurrencyHelpers

/// A virtual host's certificate and the test of whether an SNI name belongs to that host.
public struct SNICertificate: Sendable {
    /// Whether a (lowercase) SNI name is this host's.
    public var matches: @Sendable (String) -> Bool
    /// The certificate to present to it.
    public var identity: TLSIdentity

    /// Creates an entry.
    public init(matches: @escaping @Sendable (String) -> Bool, identity: TLSIdentity) {
        self.matches = matches
        self.identity = identity
    }
}

/// The current certificates; read once per handshake.
public final class TLSCertificates: Sendable {
    private struct State {
        /// By `Listener.key`: a listener keeps its certificate when others come and go.
        var listeners: [String: TLSIdentity]
        var hosts: [SNICertificate]
    }

    private let state: NIOLockedValueBox<State>

    /// Starts with the listeners' configured certificates and no virtual hosts.
    init(listeners: [Listener]) {
        state = NIOLockedValueBox(State(listeners: Self.identities(of: listeners), hosts: []))
    }

    /// Replaces the certificates of these listeners (by address; others keep theirs) and the
    /// virtual hosts'; the first matching host wins.
    public func update(listeners: [Listener], hosts: [SNICertificate]) {
        let identities = Self.identities(of: listeners)
        state.withLockedValue { state in
            state.listeners.merge(identities) { _, new in new }
            state.hosts = hosts
        }
    }

    /// Adds or replaces one listener's certificate (a listener bound while the server runs).
    func register(_ listener: Listener, key: String) {
        guard let tls = listener.tls else { return }
        state.withLockedValue { $0.listeners[key] = tls.identity }
    }

    private static func identities(of listeners: [Listener]) -> [String: TLSIdentity] {
        var identities: [String: TLSIdentity] = [:]
        for listener in listeners {
            if let tls = listener.tls { identities[listener.key] = tls.identity }
        }
        return identities
    }

    /// The certificate for a handshake on a listener with this SNI name (nil: no SNI).
    func identity(serverName: String?, listener key: String) -> TLSIdentity? {
        state.withLockedValue { state in
            if let serverName = serverName?.lowercased(), let host = state.hosts.first(where: { $0.matches(serverName) }) {
                return host.identity
            }
            return state.listeners[key]
        }
    }
}
