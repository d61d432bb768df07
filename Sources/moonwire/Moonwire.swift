// The command line: `moonwire serve`, `check`, `test`, `new`, `upgrade`, `version`.
import ArgumentParser

@main
struct Moonwire: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        abstract: "A scriptable HTTP server whose handlers are Lua 5.4 scripts.",
        version: "moonwire \(version)",
        subcommands: [Serve.self, Check.self, Test.self, New.self, Upgrade.self, Version.self],
        defaultSubcommand: Serve.self
    )
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")

    func run() {
        print(Moonwire.configuration.version)
    }
}
