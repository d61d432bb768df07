import Glibc
import NIOHTTP1

// The fields of a connection's previous request head, so that the same field lines again are
// neither parsed nor made into strings again (HPACK's idea for HTTP/1.1, with nothing on the wire).

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
struct HeadFieldStrings {
    static let maxFields = 16
    static let maxLine = 256

    private struct Field {
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
        let lineBytes = UnsafeRawBufferPointer(rebasing: bytes[line])
        if index < fields.count, fields[index].line.count == lineBytes.count,
            fields[index].line.withUnsafeBytes({ memcmp($0.baseAddress!, lineBytes.baseAddress!, lineBytes.count) }) == 0
        {
            if differing != nil { differing!.append((fields[index].name, fields[index].value)) }
            let start = line.lowerBound, value = fields[index].valueRange
            return (start..<start + fields[index].nameEnd, start + value.lowerBound..<start + value.upperBound)
        }
        let (name, value) = try HTTP1HeadParser.parseField(bytes, line)
        let made = (HTTP1HeadParser.string(bytes, name), HTTP1HeadParser.string(bytes, value))
        if differing == nil {
            var earlier = fields[..<index].map { ($0.name, $0.value) }
            earlier.reserveCapacity(8)
            differing = earlier
        }
        differing!.append(made)
        if index <= fields.count, index < Self.maxFields {
            let start = line.lowerBound
            // A long line keeps none of its bytes, so that an idle connection holds little.
            let kept =
                lineBytes.count <= Self.maxLine
                ? Field(
                    name: made.0, value: made.1, line: Array(lineBytes), nameEnd: name.upperBound - start,
                    valueRange: value.lowerBound - start..<value.upperBound - start)
                : Field(name: "", value: "", line: [], nameEnd: 0, valueRange: 0..<0)
            if index == fields.count { fields.append(kept) } else { fields[index] = kept }
            headers = nil
        }
        return (name, value)
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
