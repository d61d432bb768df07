// The access log's file and its one writer. Each event loop formats its lines into its own
// buffer (AccessLogBuffer) and hands them over a batch at a time, so a request costs a line's
// formatting and no lock, system call or thread hop; the writer queue owns the file, writes
// the batches in order, and reopens the file on request (SIGUSR1, after a rotation). What
// waits for the writer is bounded: when the file or pipe does not take lines (a full disk, a
// reader of standard output that stopped), batches past `maxQueued` are dropped and counted,
// not held in memory.
import Dispatch
import Logging
import NIOConcurrencyHelpers
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where access log lines go and how they look. Thread-safe.
public final class AccessLog: Sendable {
    /// The line formats.
    public enum Format: String, Sendable, CaseIterable {
        /// Apache's and nginx's combined format.
        case combined
        /// One JSON object per line.
        case json
    }

    /// The path given: "-" is standard output.
    public let path: String
    public let format: Format
    private let logger: Logger
    private let queue = DispatchQueue(label: "moonwire.access-log")
    /// The open file; only the queue uses it (the lock is never contended).
    private let descriptor: NIOLockedValueBox<Int32>
    /// Bytes handed over and not yet written, and batches dropped since the last warning.
    private let queued = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)
    /// What may wait for the writer.
    static let maxQueued = 16 * 1024 * 1024
    /// Bytes handed over and not yet written.
    var bytesWaiting: Int { queued.load(ordering: .relaxed) }

    /// Opens (creating, appending to) the file; throws when it cannot be opened.
    public init(path: String, format: Format, logger: Logger) throws {
        self.path = path
        self.format = format
        self.logger = logger
        descriptor = NIOLockedValueBox(try Self.open(path))
    }

    private static func open(_ path: String) throws -> Int32 {
        if path == "-" { return STDOUT_FILENO }
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw AccessLogError(path: path, reason: String(cString: strerror(errno))) }
        return descriptor
    }

    /// Appends a batch of whole lines, in the order batches are given.
    func write(_ bytes: [UInt8]) {
        guard queued.add(bytes.count, ordering: .relaxed).newValue <= Self.maxQueued else {
            queued.subtract(bytes.count, ordering: .relaxed)
            if dropped.add(1, ordering: .relaxed).oldValue == 0 {
                logger.warning("access log writer behind: lines dropped", metadata: ["path": "\(path)", "queued": "\(Self.maxQueued)"])
            }
            return
        }
        queue.async { [self] in
            defer { queued.subtract(bytes.count, ordering: .relaxed) }
            if dropped.exchange(0, ordering: .relaxed) > 0 {
                logger.warning("access log writing again", metadata: ["path": "\(path)"])
            }
            let file = descriptor.withLockedValue { $0 }
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(file, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }

    /// Opens the path again, after the lines already handed over are written: a log rotated
    /// (renamed) by logrotate goes on in a new file. If it cannot be opened, the old file stays.
    public func reopen() {
        queue.async { [descriptor, path, logger] in
            guard path != "-" else { return }
            do {
                let new = try Self.open(path)
                let old = descriptor.withLockedValue { value in
                    defer { value = new }
                    return value
                }
                close(old)
                logger.info("access log reopened", metadata: ["path": "\(path)"])
            } catch {
                logger.error("access log not reopened: \(error)")
            }
        }
    }

    /// Waits until every batch handed over is written.
    public func sync() {
        queue.sync {}
    }
}

/// An access log file that cannot be opened.
public struct AccessLogError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String

    public var description: String { "cannot open the access log \(path): \(reason)" }
}
