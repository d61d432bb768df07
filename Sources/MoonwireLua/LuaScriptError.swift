// An error raised by Lua code, with where it happened.

/// A Lua error with its message ("scripts/main.lua:3: boom") and traceback.
public struct LuaScriptError: Error, CustomStringConvertible, Sendable {
    /// The error value as text; for errors raised in a script it starts with `file:line:`.
    public var message: String
    /// The Lua stack traceback, when one was taken.
    public var traceback: String
    /// What went wrong: a script error, or a limit the server enforced.
    public var kind: Kind

    /// The kinds of fault a call can end with.
    public enum Kind: Sendable {
        /// `error()` or a runtime error in the script.
        case error
        /// The call ran more instructions than its budget.
        case cpuBudget
        /// An allocation would have taken the VM over its memory cap.
        case memory
        /// The call waited longer than the handler timeout.
        case timeout
    }

    /// Creates an error.
    public init(message: String, traceback: String = "", kind: Kind = .error) {
        self.message = message
        self.traceback = traceback
        self.kind = kind
    }

    public var description: String { traceback.isEmpty ? message : "\(message)\n\(traceback)" }

    /// The `file` and `line` the message starts with, when it does.
    var location: (file: String, line: Int)? {
        let parts = message.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let line = Int(parts[1]), line > 0 else { return nil }
        return (String(parts[0]), line)
    }
}
