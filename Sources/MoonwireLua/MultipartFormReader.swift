// Turns a multipart/form-data body, fed chunk by chunk as it arrives, into a list of what
// happened in it: a part began (with its field name, file name and content type), bytes of
// its content, the part ended. The byte-level parsing is multipart-kit's streaming
// MultipartParser (vapor/multipart-kit), which calls back per header and per slice of
// content; what it lacks is told here: it reports no end of the body (the closing
// delimiter), nor where a part's headers end, so both are inferred from its callbacks, and
// Content-Disposition is split here (the library parses it only inside its Codable decoder,
// which holds whole parts in memory).
import MultipartKit
import NIOCore

/// What a chunk of a multipart body contained, in order.
enum MultipartEvent: Equatable {
    /// A part's headers are complete. `filename` is nil for a plain field; present (maybe
    /// empty) for a file.
    case partBegan(name: String, filename: String?, contentType: String?)
    case content(ByteBuffer)
    case partEnded
}

/// Why a multipart body is refused (answered 400).
struct MultipartFormError: Error, Equatable, CustomStringConvertible {
    let description: String
}

/// A multipart/form-data parser for one body. Used on one loop.
final class MultipartFormReader {
    private let parser: MultipartParser
    private var events: [MultipartEvent] = []
    private var headers: [(String, String)] = []
    private var inPart = false
    private var sawPart = false
    private var failure: MultipartFormError?

    /// The boundary of a `multipart/form-data` Content-Type, or nil when it is not one or
    /// names none.
    static func boundary(ofContentType value: String) -> String? {
        let parameters = value.split(separator: ";").map { $0.trimmingWhitespace }
        guard parameters.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parameters.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = Self.unquoted(pair[1])
            // RFC 2046 section 5.1.1: 1 to 70 characters.
            return value.isEmpty || value.utf8.count > 70 ? nil : value
        }
        return nil
    }

    /// Whether a Content-Type is multipart/form-data (with a boundary or not).
    static func isMultipartForm(_ contentType: String) -> Bool {
        contentType.split(separator: ";").first?.trimmingWhitespace.lowercased() == "multipart/form-data"
    }

    init(boundary: String) {
        parser = MultipartParser(boundary: boundary)
        parser.onHeader = { [unowned self] name, value in
            if !inPart { headers.append((name, value)) }
        }
        parser.onBody = { [unowned self] content in
            beginPartIfNeeded()
            guard failure == nil else { return }
            // The library hands content over in slices that end at each CR byte (about every
            // 256 bytes of binary data): one event per chunk fed, not per slice.
            if case .content(var previous) = events.last {
                events[events.count - 1] = .partEnded
                previous.writeBuffer(&content)
                events[events.count - 1] = .content(previous)
            } else {
                events.append(.content(content))
            }
        }
        parser.onPartComplete = { [unowned self] in
            beginPartIfNeeded()
            events.append(.partEnded)
            inPart = false
        }
    }

    /// What `chunk` completed, in order. Throws at the first syntax error.
    func feed(_ chunk: ByteBuffer) throws -> [MultipartEvent] {
        do {
            try parser.execute(chunk)
        } catch {
            throw MultipartFormError(description: "malformed multipart body")
        }
        if let failure { throw failure }
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    /// The body ended: throws when it ended inside a part or held none.
    func finish() throws {
        guard sawPart, !inPart, headers.isEmpty else {
            throw MultipartFormError(description: "multipart body ended before its closing delimiter")
        }
    }

    /// MultipartKit says nothing when a part's headers end: its first content (or its end)
    /// does.
    private func beginPartIfNeeded() {
        guard !inPart else { return }
        inPart = true
        sawPart = true
        let fields = headers
        headers.removeAll()
        guard let disposition = fields.first(where: { $0.0.lowercased() == "content-disposition" })?.1,
            let parsed = Self.formDataDisposition(disposition)
        else {
            failure = failure ?? MultipartFormError(description: "a part without Content-Disposition: form-data; name=...")
            return
        }
        let contentType = fields.first(where: { $0.0.lowercased() == "content-type" })?.1
        events.append(.partBegan(name: parsed.name, filename: parsed.filename, contentType: contentType))
    }

    /// `form-data; name="field"; filename="a.txt"` → ("field", "a.txt").
    static func formDataDisposition(_ value: String) -> (name: String, filename: String?)? {
        var parameters = Self.splitParameters(value)
        guard !parameters.isEmpty, parameters.removeFirst().lowercased() == "form-data" else { return nil }
        var name: String?
        var filename: String?
        for parameter in parameters {
            guard let equals = parameter.firstIndex(of: "=") else { continue }
            let key = parameter[..<equals].trimmingWhitespace.lowercased()
            let value = Self.unquoted(parameter[parameter.index(after: equals)...].trimmingWhitespace)
            if key == "name" { name = value }
            if key == "filename" { filename = value }
        }
        guard let name else { return nil }
        return (name, filename)
    }

    /// Splits at `;` outside double quotes (a file name may hold a `;`).
    private static func splitParameters(_ value: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in value {
            if escaped {
                escaped = false
            } else if quoted, character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
            } else if character == ";", !quoted {
                parts.append(current.trimmingWhitespace)
                current = ""
                continue
            }
            current.append(character)
        }
        parts.append(current.trimmingWhitespace)
        return parts
    }

    /// A quoted-string's content, with its backslash escapes undone.
    private static func unquoted(_ value: String) -> String {
        guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") else { return value }
        var result = ""
        var escaped = false
        for character in value.dropFirst().dropLast() {
            if !escaped, character == "\\" {
                escaped = true
                continue
            }
            escaped = false
            result.append(character)
        }
        return result
    }
}
