// Where and how one request is forwarded. A route's settings are the same for all its
// requests, which differ only in the path: the settings sit in one shared, immutable box, so
// that a request's target, a copy of its route's, retains one reference instead of each of a
// dozen fields (those copies and their releases cost over a thousand instructions per
// proxied request; Tests/bench/instructions.sh).
import NIOCore

/// Where and how one request is forwarded.
public struct ProxyTarget: Sendable {
    private struct Settings: Sendable {
        var url: OutboundURL
        var setHeaders: [(name: String, value: String)] = []
        var removeHeaders: [String] = []
        var preserveHost = false
        var via = false
        var timeout = TimeAmount.seconds(60)
        var connectTimeout = TimeAmount.seconds(10)
        var tls = OutboundTLS()
    }

    /// Never changed in place: a change makes a new box, which other targets do not see.
    private final class Box: Sendable {
        let settings: Settings

        init(_ settings: Settings) {
            self.settings = settings
        }
    }

    private var box: Box

    /// The request target sent upstream: path and query.
    public var target: String

    /// The upstream server (scheme, host and port; its path is already folded into `target`).
    public var url: OutboundURL {
        get { box.settings.url }
        set { change { $0.url = newValue } }
    }

    /// Fields set on the forwarded request (replacing any of the same name), and removed.
    public var setHeaders: [(name: String, value: String)] {
        get { box.settings.setHeaders }
        set { change { $0.setHeaders = newValue } }
    }

    public var removeHeaders: [String] {
        get { box.settings.removeHeaders }
        set { change { $0.removeHeaders = newValue } }
    }

    /// Send the client's Host instead of the upstream's.
    public var preserveHost: Bool {
        get { box.settings.preserveHost }
        set { change { $0.preserveHost = newValue } }
    }

    /// Add `Via: 1.1 moonwire` on both ways.
    public var via: Bool {
        get { box.settings.via }
        set { change { $0.via = newValue } }
    }

    /// The longest wait for the upstream: between two reads once connected (60 s by default).
    public var timeout: TimeAmount {
        get { box.settings.timeout }
        set { change { $0.timeout = newValue } }
    }

    /// The longest wait for a connection (10 s by default).
    public var connectTimeout: TimeAmount {
        get { box.settings.connectTimeout }
        set { change { $0.connectTimeout = newValue } }
    }

    /// TLS towards an `https` upstream (verified by default).
    public var tls: OutboundTLS {
        get { box.settings.tls }
        set { change { $0.tls = newValue } }
    }

    public init(url: OutboundURL, target: String) {
        box = Box(Settings(url: url))
        self.target = target
    }

    private mutating func change(_ body: (inout Settings) -> Void) {
        var settings = box.settings
        body(&settings)
        box = Box(settings)
    }
}
