// `moonwire check`: load every script and report errors with file:line.
import ArgumentParser
import Logging
import MoonwireLua

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load every script and report errors (exit 1 on error).")

    @Option(help: "The scripts folder; main.lua is its entry point.")
    var scripts = "scripts"

    func run() throws {
        let logger = Logger(label: "moonwire") { StreamLogHandler.standardError(label: $0) }
        let errors = ScriptCheck.errors(inScriptsDirectory: scripts, logger: logger)
        guard errors.isEmpty else {
            for error in errors { print(error) }
            throw ExitCode(1)
        }
        print("ok")
    }
}
