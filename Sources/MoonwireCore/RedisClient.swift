// A Redis client for one event loop: one connection, on which concurrent calls are pipelined
// (each command is written at once; replies come back in the order the commands went out).
// It connects on the first call, sends AUTH and SELECT first, and after a failure waits with
// a doubling back-off (RedisClientStateMachine) during which calls fail at once, so a Redis
// that is down costs a request nothing but an error value. The commands awaiting replies are
// capped in bytes, so a Redis that stops reading holds at most that much of a node's memory.
import Logging
import NIOCore

/// Why a call has no reply: Redis could not be reached, the connection broke, or the reply
/// took too long. (An error reply of Redis is a reply: `RedisReply.error`.)
public struct RedisClientError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// One pipelined connection to Redis, confined to `eventLoop`.
public final class RedisClient {
    /// The bytes of commands written or queued whose replies have not come, past which a call
    /// fails at once: a Redis that does not read would otherwise have the node buffer every
    /// command until the reply timeout.
    public static let maximumPendingBytes = 32 << 20

    public let endpoint: RedisEndpoint
    public let eventLoop: EventLoop
    private let logger: Logger
    private var state = RedisClientStateMachine()
    private var connection: RedisConnection?
    private var completions: [Int: (Result<RedisReply, RedisClientError>) -> Void] = [:]
    private var timeouts: [Int: Scheduled<Void>] = [:]
    /// Commands of calls submitted while connecting, by id: sent once connected, also for a
    /// call abandoned meanwhile (the state machine counts on its reply).
    private var queuedCommands: [Int: ByteBuffer] = [:]
    private var nextID = 0
    private var isClosed = false
    /// See `maximumPendingBytes`: the size of each call's command, and their sum.
    private var commandSizes: [Int: Int] = [:]
    private var pendingBytes = 0

    public init(endpoint: RedisEndpoint, eventLoop: EventLoop, logger: Logger) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.logger = logger
    }

    private var timeout: TimeAmount { .nanoseconds(Int64(endpoint.timeout * 1e9)) }

    /// Sends the command `arguments` (its name first); `completion` runs on the loop with the
    /// reply or why there is none, at once when Redis is known to be unreachable. Returns what
    /// abandons the call (its reply, when it comes, is dropped).
    @discardableResult
    public func call(_ arguments: [[UInt8]], completion: @escaping (Result<RedisReply, RedisClientError>) -> Void)
        -> () -> Void
    {
        guard !isClosed else {
            completion(.failure(RedisClientError(description: "redis: the client is closed")))
            return {}
        }
        nextID += 1
        let id = nextID
        var bytes = ByteBuffer()
        RedisCommand.format(arguments, into: &bytes)
        guard pendingBytes + bytes.readableBytes <= Self.maximumPendingBytes else {
            let mebibytes = Self.maximumPendingBytes >> 20
            completion(.failure(RedisClientError(description: "redis \(endpoint.target): \(mebibytes) MiB of commands await replies: refused")))
            return {}
        }
        let submission = state.submit(id: id, now: .now())
        if case .fail(let message) = submission {
            completion(.failure(RedisClientError(description: "redis \(endpoint.target): \(message)")))
            return {}
        }
        // Registered before anything is written or connected, so an answer that comes at once
        // finds its call.
        completions[id] = completion
        commandSizes[id] = bytes.readableBytes
        pendingBytes += bytes.readableBytes
        timeouts[id] = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in self?.timedOut(id) }
        switch submission {
        case .send: connection?.write(bytes)
        case .queued: queuedCommands[id] = bytes
        case .connect:
            queuedCommands[id] = bytes
            connect()
        case .fail: break
        }
        return { [weak self] in _ = self?.finish(id) }
    }

    /// Redis answers again (another connection to it succeeded): the next call connects
    /// rather than fail for the rest of the back-off.
    public func endBackoff() { state.endBackoff() }

    /// Closes the connection; calls waiting get an error.
    public func close() {
        isClosed = true
        connection?.close(reason: "the client is closed")
    }

    /// Removes and returns call `id`'s completion.
    private func finish(_ id: Int) -> ((Result<RedisReply, RedisClientError>) -> Void)? {
        timeouts.removeValue(forKey: id)?.cancel()
        if let size = commandSizes.removeValue(forKey: id) { pendingBytes -= size }
        return completions.removeValue(forKey: id)
    }

    private func timedOut(_ id: Int) {
        timeouts[id] = nil
        // The replies after a missing one would answer the wrong calls: start over. A call
        // still queued fails with the connect, whose timeout is the same.
        guard state.isWaiting(id), completions[id] != nil else { return }
        connection?.close(reason: "no reply within \(endpoint.timeout) s")
    }

    private func connect() {
        RedisConnection.open(endpoint, on: eventLoop) { [self] result in
            switch result {
            case .failure(let failure): lost(reason: failure.description)
            case .success(let (connection, channel)):
                guard !isClosed else {
                    channel.close(promise: nil)
                    return lost(reason: "the client is closed")
                }
                ready(connection, channel: channel)
            }
        }
    }

    private func ready(_ connection: RedisConnection, channel: Channel) {
        self.connection = connection
        connection.onReply = { [weak self] reply in self?.received(reply) }
        connection.onClose = { [weak self] reason in
            self?.connection = nil
            self?.lost(reason: reason)
        }
        guard channel.isActive else {
            self.connection = nil
            connection.onClose = nil
            return lost(reason: "the connection closed")
        }
        let handshake = endpoint.handshake
        var bytes = ByteBuffer()
        for command in handshake { RedisCommand.format(command.map { Array($0.utf8) }, into: &bytes) }
        for id in state.connected(handshake: handshake.map { $0[0] }) {
            if var command = queuedCommands.removeValue(forKey: id) { bytes.writeBuffer(&command) }
        }
        connection.write(bytes)
    }

    private func received(_ reply: RedisReply) {
        switch state.received(reply) {
        case .complete(let id, let reply): finish(id)?(.success(reply))
        case .handshakeStep: break
        case .close(let reason): connection?.close(reason: reason)
        }
    }

    private func lost(reason: String) {
        let lost = state.connectionLost(reason: reason, now: .now())
        queuedCommands.removeAll()
        if !isClosed {
            let retry = RedisClientStateMachine.backoff(after: state.failures).nanoseconds / 1_000_000
            logger.warning("redis \(endpoint.target): \(reason) (next try in \(retry) ms)")
        }
        for id in lost {
            finish(id)?(.failure(RedisClientError(description: "redis \(endpoint.target): \(reason)")))
        }
    }
}
