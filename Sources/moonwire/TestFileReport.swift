// One test file's run in `moonwire test`: the server started for it, the file's tests run
// against it, the server stopped; and the results as text (one line per test, failures with
// their file:line, expected and actual, and the server's log) and as JUnit XML.
import Foundation
import MoonwireCore
import MoonwireLua

/// The results of one test file, and their text.
struct TestFileReport {
    let file: String
    let results: [LuaTestResult]
    let text: String

    /// Starts the app on an ephemeral loopback port, runs the file's tests, stops the app.
    static func run(file: String, scripts: String, www: String, filter: String?, dev: Bool, timeout: Double) -> TestFileReport {
        let log = TestLog()
        let clock = ServerClock(advanceable: true)
        var results: [LuaTestResult] = []
        do {
            let stack = try ServerStack(
                scripts: scripts, www: www, threads: 1, workers: 0, developmentMode: dev, logger: log.logger(), clock: clock,
                listeners: { _ in [Listener(host: "127.0.0.1", port: 0)] })
            guard let port = try stack.listen().first?.port else { throw ServerStack.LoadFailure(description: "no port") }
            try stack.startScripts()
            let tests = LuaTestFile(path: file, port: port, clock: clock, serverLoops: stack.hosts.map(\.eventLoop), timeout: timeout)
            results = tests.run(filter: filter) { $0.serverLog = log.drain() }
            try stack.stop()
        } catch {
            let failure = "the app did not start: \(error)"
            results.append(LuaTestResult(name: "(start)", line: 0, failure: failure, seconds: 0, serverLog: log.drain()))
        }
        return TestFileReport(file: file, results: results, text: text(file: file, results))
    }

    private static func text(file: String, _ results: [LuaTestResult]) -> String {
        var text = ""
        for result in results {
            let time = String(format: "%.1f ms", result.seconds * 1000)
            text += "\(result.failure == nil ? "ok  " : "FAIL") \(file):\(result.line) \(result.name) (\(time))\n"
            guard let failure = result.failure else { continue }
            text += indented(failure)
            if !result.serverLog.isEmpty {
                text += "    server log:\n" + result.serverLog.map { indented($0, by: "      ") }.joined()
            }
        }
        return text
    }

    private static func indented(_ text: String, by prefix: String = "    ") -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { prefix + $0 + "\n" }.joined()
    }

    /// The reports as JUnit XML: a testsuite per file, a testcase per test.
    static func junit(_ reports: [TestFileReport]) -> String {
        let tests = reports.reduce(0) { $0 + $1.results.count }
        let failures = reports.reduce(0) { $0 + $1.results.filter { $0.failure != nil }.count }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"moonwire test\" tests=\"\(tests)\" failures=\"\(failures)\">\n"
        for report in reports {
            let failed = report.results.filter { $0.failure != nil }.count
            let time = report.results.reduce(0) { $0 + $1.seconds }
            xml += "  <testsuite name=\"\(escape(report.file))\" tests=\"\(report.results.count)\" failures=\"\(failed)\" errors=\"0\" time=\"\(seconds(time))\">\n"
            for result in report.results {
                xml += "    <testcase classname=\"\(escape(report.file))\" name=\"\(escape(result.name))\" file=\"\(escape(report.file))\" line=\"\(result.line)\" time=\"\(seconds(result.seconds))\""
                guard let failure = result.failure else {
                    xml += "/>\n"
                    continue
                }
                let message = failure.split(separator: "\n").first.map(String.init) ?? failure
                let detail = ([failure] + result.serverLog).joined(separator: "\n")
                xml += ">\n      <failure message=\"\(escape(message))\">\(escape(detail))</failure>\n    </testcase>\n"
            }
            xml += "  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
    }

    private static func seconds(_ value: Double) -> String { String(format: "%.6f", value) }

    /// Text as XML character data or an attribute value: markup escaped, and the control
    /// characters XML 1.0 cannot hold dropped.
    private static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n", "\t": out += scalar == "\n" ? "&#10;" : "&#9;"
            case _ where scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF: continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
