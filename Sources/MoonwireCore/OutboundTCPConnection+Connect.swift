// Opening an outbound connection on a given event loop: NIO's ClientBootstrap (Happy
// Eyeballs over IPv4 and IPv6), then the TLS handshake when asked for, under one deadline.
// Names are resolved by NIO's GetaddrinfoResolver, which runs getaddrinfo on a dispatch queue
// of its own (one per event loop thread), never on the loop: a slow DNS server delays the
// lookups of that loop, one after another, but no event.
import Glibc
import NIOCore
import NIOPosix
import NIOSSL

extension OutboundTCPConnection {
    /// Connects to `host`:`port` from `eventLoop` (the caller's loop, so the connection and its
    /// answers stay there). `completion` runs on that loop with the ready connection (TLS
    /// handshake done) or the failure; at once when the settings cannot be used. Returns what
    /// cancels the attempt: a connection that arrives afterwards is closed.
    public static func connect(
        host: String, port: Int, tls: OutboundTLS?, timeout: TimeAmount, limits: TCPReceiveBuffer.Limits = .init(),
        on eventLoop: EventLoop, completion: @escaping (Result<OutboundTCPConnection, TCPSocketError>) -> Void
    ) -> () -> Void {
        let target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let attempt = ConnectAttempt(completion)
        var sslContext: NIOSSLContext?
        do {
            sslContext = try tls?.context()
        } catch {
            attempt.finish(.failure(.tlsSetup(reason: "\(tls?.caFile.map { "tls.ca \($0)" } ?? "the trust store"): \(error)")))
            return {}
        }
        let serverName = tls.map { $0.serverName ?? host }.flatMap { isIPAddress($0) ? nil : $0 }
        let context = sslContext
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    let pipeline = channel.pipeline.syncOperations
                    if let context { try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName)) }
                    try pipeline.addHandler(OutboundTCPConnection(eventLoop: channel.eventLoop, handshakes: context != nil, limits: limits))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let seconds = Double(timeout.nanoseconds) / 1e9
        attempt.deadline = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            attempt.finish(.failure(.connectTimeout(target: target, seconds: seconds)))
        }
        bootstrap.connect(host: host, port: port).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                attempt.finish(.failure(describe(error, target: target, host: host, seconds: seconds)))
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: OutboundTCPConnection.self) else {
                    channel.close(promise: nil)
                    return attempt.finish(.failure(.connectFailed(target: target, reason: "no connection handler")))
                }
                guard !attempt.isFinished else { return connection.close() }
                attempt.connection = connection
                connection.whenReady { failure in
                    guard let failure else { return attempt.finish(.success(connection)) }
                    attempt.finish(.failure(.tlsHandshake(target: target, reason: tlsReason(failure))))
                }
            }
        }
        return { attempt.finish(nil) }
    }

    /// A bootstrap's failure as the message scripts see.
    static func describe(_ error: Error, target: String, host: String, seconds: Double) -> TCPSocketError {
        if case ChannelError.connectTimeout = error { return .connectTimeout(target: target, seconds: seconds) }
        guard let failure = error as? NIOConnectionError else {
            return .connectFailed(target: target, reason: String(describing: error))
        }
        let errors = failure.connectionErrors.map(\.error)
        if errors.isEmpty { return .unresolved(host: host) }
        if errors.contains(where: { ($0 as? IOError)?.errnoCode == ECONNREFUSED }) { return .refused(target: target) }
        if errors.contains(where: { if case ChannelError.connectTimeout = $0 { true } else { false } }) {
            return .connectTimeout(target: target, seconds: seconds)
        }
        return .connectFailed(target: target, reason: String(describing: errors[0]))
    }

    /// BoringSSL's reason ("CERTIFICATE_VERIFY_FAILED") out of NIOSSL's description of a
    /// handshake error, which also carries codes and a source path; other errors as they are.
    static func tlsReason(_ description: String) -> String {
        if description.contains("EOF during handshake") { return "the peer closed the connection during the handshake" }
        guard let start = description.firstRange(of: "OPENSSL_internal:") else { return description }
        return String(description[start.upperBound...].prefix { $0 != " " && $0 != "]" })
    }

    /// Whether `name` is an IPv4 or IPv6 literal (SNI carries only names).
    static func isIPAddress(_ name: String) -> Bool {
        (try? SocketAddress(ipAddress: name, port: 0)) != nil
    }
}

/// One connect in progress, confined to its loop: whichever ends it first (the bootstrap, the
/// handshake, the deadline, a cancel) decides, and a connection nobody will take is closed.
private final class ConnectAttempt {
    private var completion: ((Result<OutboundTCPConnection, TCPSocketError>) -> Void)?
    var deadline: Scheduled<Void>?
    /// The connection once TCP connected, still in its handshake.
    var connection: OutboundTCPConnection?

    init(_ completion: @escaping (Result<OutboundTCPConnection, TCPSocketError>) -> Void) {
        self.completion = completion
    }

    /// Whether the attempt has ended (and a connection arriving now is unwanted).
    var isFinished: Bool { completion == nil }

    /// Ends the attempt with `result` (nil: cancelled, nobody is told). Later calls do nothing,
    /// except that a connection arriving after the end is closed.
    func finish(_ result: Result<OutboundTCPConnection, TCPSocketError>?) {
        guard let completion = completion.take() else {
            if case .success(let late) = result { late.close() }
            return
        }
        deadline?.cancel()
        if case .success = result { return completion(result!) }
        connection?.close()
        if let result { completion(result) }
    }
}
