import Glibc
import NIOHTTP1

// The fields of a connection's previous head (a client's request, or an upstream's answer), so
// that the same field lines again are neither parsed nor made into strings again (HPACK's idea
// for HTTP/1.1, with nothing on the wire).

/// The fields of the last head parsed on a connection, by position, each with the line's bytes
/// it came from, and, when every field of that head was kept, all their strings as the
/// `HTTPHeaders` that head got.
///
/// A keep-alive client sends most of its field lines again with every request (Host,
/// User-Agent, Accept, Cookie...), in the same order. A line equal to the one at the same
/// position before is a valid field line whose name and value lie where they lay in that one,
/// and gets that line's strings: parsing and checking a field costs about 220 instructions,
/// and making a String checks and copies the bytes (one longer than 15 bytes allocates). A head
/// whose lines are all the previous head's gets that head's `HTTPHeaders` itself, one
/// reference: no array is built, and none is destroyed, field by field, when the request ends.
/// Equal bytes make equal fields, so nothing a handler sees changes. Bounded: the first
/// `maxFields` fields, each at most `maxLine` bytes, are kept.
///
/// A keep-alive upstream answers with the same head byte for byte but its Date line, and its
/// answers are read the same way (`answerField`), without strings: their fields stay ranges
/// in their bytes. A line skipped was checked when it was kept (no bare CR or LF, no obs-fold);
/// what it means (framing, Connection) is read again by the caller from the ranges given.
struct HeadFieldStrings {
    static let maxFields = 16
    static let maxLine = 256

    private struct Field {
        /// Empty for an answer's line: answers keep their fields as ranges.
        var name: String
        var value: String
        /// Empty for a line too long to keep: no field line is empty, so it matches none.
        var line: [UInt8]
        /// Where the name ends and where the value lies, from the start of the line.
        var nameEnd: Int
        var valueRange: Range<Int>
    }

    private var fields: [Field] = []
    /// The strings of `fields`, as the head that had exactly these fields, none of them too
    /// long to keep, got them.
    private var headers: HTTPHeaders?
    /// The head being parsed: its fields so far, and their strings once one of them was not
    /// the previous head's at its position (nil while every one was).
    private var count = 0
    private var differing: [(String, String)]?

    /// An upstream's answers, whose fields stay ranges in the bytes they came in: the ranges
    /// of the previous answer's fields, which the next answer's replace where they differ.
    /// An answer whose fields lie where the previous one's lay (the same lines after a status
    /// line as long) gets the same array, one reference; one that differs writes into it, in
    /// place once the previous answer's head is gone (a copy while that head lives on).
    private var ranges: [(name: Range<Int>, value: Range<Int>)] = []

    /// Starts a head.
    mutating func startHead() {
        count = 0
        differing = nil
    }

    /// The name and value of the head's next field line, `bytes[line]`; throws, as
    /// `HTTP1HeadParser.parseField` does, for a line that is not a valid field.
    mutating func field(_ bytes: UnsafeRawBufferPointer, line: Range<Int>) throws -> (name: Range<Int>, value: Range<Int>) {
        let index = count
        count += 1
        if let kept = kept(index, bytes, line: line) {
            if differing != nil { differing!.append((fields[index].name, fields[index].value)) }
            return kept
        }
        let (name, value) = try HTTP1HeadParser.parseField(bytes, line)
        let made = (HTTP1HeadParser.string(bytes, name), HTTP1HeadParser.string(bytes, value))
        if differing == nil {
            var earlier = fields[..<index].map { ($0.name, $0.value) }
            earlier.reserveCapacity(8)
            differing = earlier
        }
        differing!.append(made)
        keep(index, bytes, line: line, name: name, value: value, strings: made)
        return (name, value)
    }

    /// The name and value of the next field line of an answer, `bytes[line]`, as `field` gives
    /// them but without strings: an answer's fields stay ranges (`endAnswerHead`).
    mutating func answerField(_ bytes: UnsafeRawBufferPointer, line: Range<Int>) throws -> (name: Range<Int>, value: Range<Int>) {
        let index = count
        count += 1
        let field: (name: Range<Int>, value: Range<Int>)
        if let kept = kept(index, bytes, line: line) {
            field = kept
        } else {
            field = try HTTP1HeadParser.parseField(bytes, line)
            keep(index, bytes, line: line, name: field.name, value: field.value, strings: ("", ""))
        }
        if index == ranges.count {
            ranges.append(field)
        } else if ranges[index] != field {
            ranges[index] = field
        }
        return field
    }

    /// Where the name and value of `bytes[line]` lie when it is the line kept at `index`.
    @inline(__always)
    private func kept(_ index: Int, _ bytes: UnsafeRawBufferPointer, line: Range<Int>) -> (name: Range<Int>, value: Range<Int>)? {
        guard index < fields.count, fields[index].line.count == line.count else { return nil }
        let equal = fields[index].line.withUnsafeBytes { memcmp($0.baseAddress!, bytes.baseAddress! + line.lowerBound, line.count) == 0 }
        guard equal else { return nil }
        let start = line.lowerBound, value = fields[index].valueRange
        return (start..<start + fields[index].nameEnd, start + value.lowerBound..<start + value.upperBound)
    }

    /// Keeps a line just parsed at `index`, when there is room for it.
    private mutating func keep(
        _ index: Int, _ bytes: UnsafeRawBufferPointer, line: Range<Int>, name: Range<Int>, value: Range<Int>, strings: (String, String)
    ) {
        guard index <= fields.count, index < Self.maxFields else { return }
        let start = line.lowerBound
        // A long line keeps none of its bytes, so that an idle connection holds little.
        let kept =
            line.count <= Self.maxLine
            ? Field(
                name: strings.0, value: strings.1, line: Array(UnsafeRawBufferPointer(rebasing: bytes[line])), nameEnd: name.upperBound - start,
                valueRange: value.lowerBound - start..<value.upperBound - start)
            : Field(name: "", value: "", line: [], nameEnd: 0, valueRange: 0..<0)
        if index == fields.count { fields.append(kept) } else { fields[index] = kept }
        headers = nil
    }

    /// An answer's fields, once its last one was read.
    mutating func endAnswerHead() -> [(name: Range<Int>, value: Range<Int>)] {
        if count < fields.count { fields.removeSubrange(count...) }
        if count < ranges.count { ranges.removeSubrange(count...) }
        // The storage of a head with more fields than are kept is not, so that an idle
        // connection holds little.
        let answer = ranges
        if ranges.count > Self.maxFields { ranges = [] }
        return answer
    }

    /// The head's fields, once its last one was read.
    mutating func endHead() -> HTTPHeaders {
        if differing == nil, count == fields.count, let headers { return headers }
        let list = differing ?? fields[..<count].map { ($0.name, $0.value) }
        differing = nil
        if count < fields.count { fields.removeSubrange(count...) }
        let made = HTTPHeaders(list)
        // Kept whole only when every field is kept, long lines being left out of `fields`.
        headers = count == fields.count && !fields.contains(where: { $0.line.isEmpty }) ? made : nil
        return made
    }
}
