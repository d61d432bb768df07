import Glibc

// The strings of a connection's previous request fields, so that the same field lines again
// give the same strings back (HPACK's idea for HTTP/1.1, with nothing on the wire).

/// The name and value strings of the fields of the last head parsed on a connection, by
/// position, each with the line's bytes they came from.
///
/// A keep-alive client sends most of its field lines again with every request (Host,
/// User-Agent, Accept, Cookie...), in the same order. Making a String checks and copies the
/// bytes, and one longer than 15 bytes allocates; a line equal to the one at the same position
/// before gets that line's strings instead. The line was checked as a field by the parser
/// before it is looked up here; equal bytes make equal strings, so nothing a handler sees
/// changes. Bounded: the first `maxFields` fields, each at most `maxLine` bytes, are kept.
struct HeadFieldStrings {
    static let maxFields = 16
    static let maxLine = 256

    private struct Field {
        var name = ""
        var value = ""
        /// Empty for a line too long to keep: no field line is empty, so it matches none.
        var line: [UInt8] = []
    }

    private var fields: [Field] = []

    /// The strings of field number `index` of a head, whose line is `bytes[line]`, with its
    /// name and value at `name` and `value` inside it.
    mutating func strings(
        at index: Int, _ bytes: UnsafeRawBufferPointer, line: Range<Int>, name: Range<Int>, value: Range<Int>
    ) -> (String, String) {
        let lineBytes = UnsafeRawBufferPointer(rebasing: bytes[line])
        if index < fields.count, fields[index].line.count == lineBytes.count,
            fields[index].line.withUnsafeBytes({ memcmp($0.baseAddress!, lineBytes.baseAddress!, lineBytes.count) }) == 0
        {
            return (fields[index].name, fields[index].value)
        }
        let made = (HTTP1HeadParser.string(bytes, name), HTTP1HeadParser.string(bytes, value))
        guard index <= fields.count, index < Self.maxFields else { return made }
        let kept = lineBytes.count <= Self.maxLine ? Field(name: made.0, value: made.1, line: Array(lineBytes)) : Field()
        if index == fields.count { fields.append(kept) } else { fields[index] = kept }
        return made
    }
}
