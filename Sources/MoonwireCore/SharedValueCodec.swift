// SharedValue as bytes, for the state a cluster keeps in Redis (a session's data). A compact
// tagged format rather than JSON: Lua strings are bytes (not always UTF-8), integers and floats
// stay apart, and integer keys stay integers, so a value read back is the value saved. The
// first byte is the format's version; a blob of another version or a damaged one decodes to
// nil, never to a wrong value.

/// Encodes and decodes SharedValue.
public enum SharedValueCodec {
    static let version: UInt8 = 1
    /// Tables nested deeper than this are refused when decoding (the Lua side caps depth lower).
    static let maximumDepth = 64

    private enum Tag: UInt8 {
        case string = 1, integer, number, boolean, table, stringKey, integerKey
    }

    /// The bytes of `value`.
    public static func encode(_ value: SharedValue) -> [UInt8] {
        var bytes: [UInt8] = [version]
        write(value, into: &bytes)
        return bytes
    }

    /// The value `bytes` hold, or nil when they are not this format.
    public static func decode(_ bytes: [UInt8]) -> SharedValue? {
        guard bytes.first == version else { return nil }
        var reader = Reader(bytes: bytes, offset: 1)
        guard let value = reader.value(depth: 0), reader.offset == bytes.count else { return nil }
        return value
    }

    private static func write(_ value: SharedValue, into bytes: inout [UInt8]) {
        switch value {
        case .string(let string):
            bytes.append(Tag.string.rawValue)
            writeBytes(string, into: &bytes)
        case .integer(let integer):
            bytes.append(Tag.integer.rawValue)
            writeWord(UInt64(bitPattern: integer), into: &bytes)
        case .number(let number):
            bytes.append(Tag.number.rawValue)
            writeWord(number.bitPattern, into: &bytes)
        case .boolean(let boolean):
            bytes.append(Tag.boolean.rawValue)
            bytes.append(boolean ? 1 : 0)
        case .table(let fields):
            bytes.append(Tag.table.rawValue)
            writeWord(UInt64(fields.count), into: &bytes)
            for (key, element) in fields {
                switch key {
                case .string(let string):
                    bytes.append(Tag.stringKey.rawValue)
                    writeBytes(string, into: &bytes)
                case .integer(let integer):
                    bytes.append(Tag.integerKey.rawValue)
                    writeWord(UInt64(bitPattern: integer), into: &bytes)
                }
                write(element, into: &bytes)
            }
        }
    }

    private static func writeBytes(_ string: [UInt8], into bytes: inout [UInt8]) {
        writeWord(UInt64(string.count), into: &bytes)
        bytes.append(contentsOf: string)
    }

    private static func writeWord(_ word: UInt64, into bytes: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset: Int

        mutating func value(depth: Int) -> SharedValue? {
            guard depth <= maximumDepth, let tag = byte().flatMap(Tag.init) else { return nil }
            switch tag {
            case .string: return string().map { .string($0) }
            case .integer: return word().map { .integer(Int64(bitPattern: $0)) }
            case .number: return word().map { .number(Double(bitPattern: $0)) }
            case .boolean:
                guard let flag = byte(), flag <= 1 else { return nil }
                return .boolean(flag == 1)
            case .table:
                // Each field takes at least 10 bytes: a count beyond what is left is damage.
                guard let count = word(), count <= UInt64(bytes.count - offset) / 10 else { return nil }
                var fields: [SharedKey: SharedValue] = [:]
                for _ in 0..<count {
                    let key: SharedKey
                    switch byte().flatMap(Tag.init) {
                    case .stringKey:
                        guard let string = string() else { return nil }
                        key = .string(string)
                    case .integerKey:
                        guard let integer = word() else { return nil }
                        key = .integer(Int64(bitPattern: integer))
                    default: return nil
                    }
                    guard let element = value(depth: depth + 1) else { return nil }
                    fields[key] = element
                }
                return .table(fields)
            case .stringKey, .integerKey: return nil
            }
        }

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func word() -> UInt64? {
            guard bytes.count - offset >= 8 else { return nil }
            defer { offset += 8 }
            return bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
        }

        mutating func string() -> [UInt8]? {
            guard let length = word(), length <= UInt64(bytes.count - offset) else { return nil }
            defer { offset += Int(length) }
            return Array(bytes[offset..<offset + Int(length)])
        }
    }
}
