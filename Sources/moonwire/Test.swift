// `moonwire test`: runs the `*_test.lua` files against the app, each file against a server of
// its own (the one `serve` runs, on an ephemeral loopback port, with a clock the tests move),
// so that `moonwire.shared`, sessions and timers start fresh in every file. Files run in
// parallel; each file's tests run in order.
import ArgumentParser
import Dispatch
import Foundation
import MoonwireCore
import MoonwireLua
import NIOConcurrencyHelpers
import NIOCore

struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the *_test.lua files under tests/ (or the paths given) against the app (exit 1 on a failure).")

    @Option(help: "The scripts folder; main.lua is its entry point.")
    var scripts = "scripts"

    @Option(help: "The static files folder.")
    var www = "www"

    @Option(help: "Write the results as JUnit XML to this file.")
    var junit: String?

    @Option(help: "Run only the tests whose names contain this text.")
    var filter: String?

    @Option(help: "Seconds a test may run its own Lua code, and wait for each answer.")
    var timeout = 30.0

    @Option(help: "Test files run at once (default: one per core).")
    var jobs: Int?

    @Flag(help: "Development mode for the app under test (error pages with tracebacks).")
    var dev = false

    @Argument(help: "Test files, or folders to search for *_test.lua (default: tests).")
    var paths: [String] = []

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if !(timeout > 0) { throw ValidationError("--timeout must be more than 0") }
    }

    func run() throws {
        let files = Self.testFiles(in: paths.isEmpty ? ["tests"] : paths)
        guard !files.isEmpty else {
            print("no *_test.lua files in \((paths.isEmpty ? ["tests"] : paths).joined(separator: ", "))")
            throw ExitCode(1)
        }
        let started = Date()
        let reports = NIOLockedValueBox<[Int: TestFileReport]>([:])
        let output = NIOLock()
        let width = min(jobs ?? System.coreCount, files.count)
        let next = NIOLockedValueBox(0)
        let options = (scripts: scripts, www: www, filter: filter, dev: dev, timeout: timeout)
        DispatchQueue.concurrentPerform(iterations: width) { _ in
            while true {
                let index = next.withLockedValue { value -> Int in
                    defer { value += 1 }
                    return value
                }
                guard index < files.count else { return }
                let report = TestFileReport.run(
                    file: files[index], scripts: options.scripts, www: options.www, filter: options.filter, dev: options.dev, timeout: options.timeout)
                output.withLock { FileHandle.standardOutput.write(Data(report.text.utf8)) }
                reports.withLockedValue { $0[index] = report }
            }
        }
        let all = reports.withLockedValue { reports in files.indices.compactMap { reports[$0] } }
        let passed = all.reduce(0) { $0 + $1.results.filter { $0.failure == nil }.count }
        let failed = all.reduce(0) { $0 + $1.results.filter { $0.failure != nil }.count }
        print("\(passed) passed, \(failed) failed (\(files.count) file\(files.count == 1 ? "" : "s"), "
            + String(format: "%.2f s)", Date().timeIntervalSince(started)))
        if let junit {
            try TestFileReport.junit(all).write(toFile: junit, atomically: true, encoding: .utf8)
        }
        if failed > 0 || passed == 0 { throw ExitCode(1) }
    }

    /// The files given, and the `*_test.lua` files under the folders given, each list sorted.
    static func testFiles(in paths: [String]) -> [String] {
        var files: [String] = []
        for path in paths {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
            guard isFolder.boolValue else {
                files.append(path)
                continue
            }
            let found = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                .filter { $0.hasSuffix("_test.lua") }.sorted()
            files += found.map { (path as NSString).appendingPathComponent($0) }
        }
        return files
    }
}
