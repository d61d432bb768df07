// The 500 answer to a failed handler: a plain page in production; in development mode the
// message, the traceback and the source lines around the failing line.
import MoonwireCore

#if canImport(Glibc)
import Glibc
#endif

extension LuaVM {
    func errorPage(for error: LuaScriptError) -> HTTPResponse {
        let status = error.kind == .cpuBudget || error.kind == .timeout ? 503 : 500
        guard developmentMode else { return .statusPage(status) }
        var text = "\(HTTPResponse.statusText(status))\n\(error.message)\n\n\(error.traceback)\n"
        if let location = error.location, let source = Self.sourceExcerpt(file: names.path(location.file), line: location.line) {
            text += "\n\(location.file):\n\(source)"
        }
        return .plain(status, text)
    }

    /// Up to three lines either side of `line`, numbered, the failing one marked.
    static func sourceExcerpt(file: String, line: Int) -> String? {
        guard let handle = fopen(file, "r") else { return nil }
        defer { fclose(handle) }
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        while lines.count < line + 3, fgets(&buffer, Int32(buffer.count), handle) != nil {
            let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            lines.append(String(decoding: bytes, as: UTF8.self).trimmingTrailingNewline)
        }
        guard line <= lines.count else { return nil }
        return (max(1, line - 3)...min(lines.count, line + 3)).map { number in
            "\(number == line ? ">>" : "  ") \(number) | \(lines[number - 1])"
        }.joined(separator: "\n") + "\n"
    }
}

extension String {
    fileprivate var trimmingTrailingNewline: String {
        var copy = self
        while copy.hasSuffix("\n") || copy.hasSuffix("\r") { copy.removeLast() }
        return copy
    }
}
