// The server log of `moonwire test`: each test file's server logs into a buffer of its own, and
// the warnings and errors logged while a test ran (a handler's error with its traceback, a
// script cut off by its CPU budget) are printed under that test.
import Logging
import NIOConcurrencyHelpers

/// Keeps the warnings and errors logged, for `drain`.
final class TestLog: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    /// A logger that writes here.
    func logger() -> Logger {
        var logger = Logger(label: "moonwire") { _ in Handler(sink: self) }
        logger.logLevel = .warning
        return logger
    }

    /// The entries logged since the last call, each as its text.
    func drain() -> [String] {
        lines.withLockedValue { lines in
            defer { lines = [] }
            return lines
        }
    }

    fileprivate func append(_ line: String) {
        lines.withLockedValue { $0.append(line) }
    }

    private struct Handler: LogHandler {
        let sink: TestLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .warning

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var text = "\(event.level): \(event.message)"
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            for (key, value) in all.sorted(by: { $0.key < $1.key }) {
                text += "\n  \(key): " + "\(value)".split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n    ")
            }
            sink.append(text)
        }
    }
}
