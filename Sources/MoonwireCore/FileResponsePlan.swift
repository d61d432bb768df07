// What answer a file request gets: RFC 9110's conditional requests (section 13) and single
// byte ranges (section 14), decided from the file's validators and the request's headers.
import NIOHTTP1

/// How to answer a request for a file.
enum FileResponsePlan: Equatable {
    /// 200 with the whole file.
    case whole
    /// 206 with these bytes (both ends inclusive).
    case partial(ClosedRange<Int>)
    /// 304: the client's copy is current.
    case notModified
    /// 412: an If-Match or If-Unmodified-Since precondition failed.
    case preconditionFailed
    /// 416: the range lies outside the file.
    case unsatisfiable

    /// Decides the answer for a GET (or HEAD, `rangesAllowed` false) of `file`.
    init(file: StaticFile, headers: HTTPHeaders, rangesAllowed: Bool) {
        let etag = file.etag
        if let ifMatch = headers.first(name: "if-match") {
            if !Self.matches(ifMatch, etag, weak: false) { self = .preconditionFailed; return }
        } else if let since = headers.first(name: "if-unmodified-since").flatMap(HTTPDate.parse), file.modifiedSeconds > since {
            self = .preconditionFailed
            return
        }
        if let ifNoneMatch = headers.first(name: "if-none-match") {
            if Self.matches(ifNoneMatch, etag, weak: true) { self = .notModified; return }
        } else if let since = headers.first(name: "if-modified-since").flatMap(HTTPDate.parse), file.modifiedSeconds <= since {
            self = .notModified
            return
        }
        guard rangesAllowed, let range = headers.first(name: "range") else { self = .whole; return }
        if let ifRange = headers.first(name: "if-range") {
            let current = ifRange.hasPrefix("\"") ? ifRange == etag : HTTPDate.parse(ifRange) == file.modifiedSeconds
            if !current { self = .whole; return }
        }
        self = Self.plan(range: range, size: file.size)
    }

    /// The request fields that can make the answer other than `.whole`.
    private static let deciding = ["if-match", "if-unmodified-since", "if-none-match", "if-modified-since", "range"]

    /// Whether `headers` has none of the fields that decide a plan: the answer is `.whole`
    /// without parsing anything (most requests; a cached file's plain answer relies on it).
    /// One pass over the fields, comparing only names of a deciding length.
    static func isUnconditional(_ headers: HTTPHeaders) -> Bool {
        for (name, _) in headers {
            let length = name.utf8.count
            if deciding.contains(where: { $0.utf8.count == length && name.lowercased() == $0 }) { return false }
        }
        return true
    }

    /// A `bytes=` range header with one range; anything else (several ranges, other units,
    /// syntax errors) is ignored and the whole file is sent, as RFC 9110 allows.
    static func plan(range header: String, size: Int) -> FileResponsePlan {
        let value = header.trimmingWhitespace
        guard value.lowercased().hasPrefix("bytes="), !value.contains(",") else { return .whole }
        let spec = value.dropFirst(6).trimmingWhitespace
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .whole }
        let first = parts[0].trimmingWhitespace, last = parts[1].trimmingWhitespace
        if first.isEmpty {
            guard let suffix = Int(last), suffix >= 0 else { return .whole }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .partial(max(0, size - suffix)...(size - 1))
        }
        guard let start = Int(first), start >= 0 else { return .whole }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .partial(start...(size - 1)) }
        guard let end = Int(last), end >= start else { return .whole }
        return .partial(start...min(end, size - 1))
    }

    /// Compares an If-Match / If-None-Match list with our entity tag.
    private static func matches(_ list: String, _ etag: String, weak: Bool) -> Bool {
        list.split(separator: ",").contains { candidate in
            var tag = candidate.trimmingWhitespace
            if tag == "*" { return true }
            if weak, tag.hasPrefix("W/") { tag = String(tag.dropFirst(2)) }
            return tag == etag || (weak && tag == ResponseCompression.gzipETag(etag))
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (the OWS of RFC 9110).
    public var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
