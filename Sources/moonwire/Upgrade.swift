// `moonwire upgrade`: asks a running server for a zero-downtime binary upgrade (SIGUSR2, as
// `kill -USR2` does) and waits until the new process has written its pid in the pid file,
// which it does once it serves; exit 1 when that does not happen in time (the old process
// keeps serving and its log says why).
import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct Upgrade: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the binary again in place of a running server, without dropping a connection (SIGUSR2).")

    @Option(help: "The pid file the server writes (`moonwire serve --pid-file`).")
    var pidFile: String

    @Option(help: "Seconds to wait for the new process to serve.")
    var timeout: Double = 35

    func run() throws {
        guard let old = Self.pid(in: pidFile) else {
            throw ValidationError("no pid in \(pidFile): is the server running with --pid-file \(pidFile)?")
        }
        guard kill(old, SIGUSR2) == 0 else {
            throw ValidationError("cannot signal process \(old): \(String(cString: strerror(errno)))")
        }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let new = Self.pid(in: pidFile), new != old {
                print("upgraded: process \(new) serves, process \(old) drains")
                return
            }
            usleep(50_000)
        }
        print("no new process serves after \(timeout) s; process \(old) keeps serving (its log says why)")
        throw ExitCode(1)
    }

    static func pid(in file: String) -> Int32? {
        (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
