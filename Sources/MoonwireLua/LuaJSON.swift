// moonwire.json: JSON (RFC 8259) straight between Lua values and bytes. Written here because a
// Swift JSON library would go through Foundation types and strings twice on every call.
import CLua
import MoonwireCore

/// Encodes Lua values to JSON text and decodes JSON text onto the Lua stack.
enum LuaJSON {
    static let maximumDepth = 200

    /// Encodes the value at `index`; returns an error message on failure.
    static func encode(_ L: LuaThread, at index: Int32) -> Result<[UInt8], JSONError> {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        do {
            try encodeValue(L, lua_absindex(L, index), into: &out, depth: 0)
            return .success(out)
        } catch {
            return .failure(error)
        }
    }

    struct JSONError: Error {
        var message: String
    }

    private static func encodeValue(_ L: LuaThread, _ index: Int32, into out: inout [UInt8], depth: Int) throws(JSONError) {
        guard depth < maximumDepth else { throw JSONError(message: "nesting deeper than \(maximumDepth) (a cycle?)") }
        switch lua_type(L, index) {
        case LUA_TNIL:
            out.append(contentsOf: "null".utf8)
        case LUA_TBOOLEAN:
            out.append(contentsOf: (lua_toboolean(L, index) != 0 ? "true" : "false").utf8)
        case LUA_TNUMBER:
            if mw_isinteger(L, index) != 0 {
                out.append(contentsOf: String(mw_tointeger(L, index, nil)).utf8)
            } else {
                let value = mw_tonumber(L, index, nil)
                guard value.isFinite else { throw JSONError(message: "cannot encode \(value)") }
                out.append(contentsOf: (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)").utf8)
            }
        case LUA_TSTRING:
            _ = L.withBytes(at: index) { appendString($0, into: &out) }
        case LUA_TLIGHTUSERDATA where lua_touserdata(L, index) == nil:
            out.append(contentsOf: "null".utf8)
        case LUA_TTABLE:
            try encodeTable(L, index, into: &out, depth: depth)
        default:
            throw JSONError(message: "cannot encode a value of type \(String(cString: mw_typename(L, index)))")
        }
    }

    private static func encodeTable(_ L: LuaThread, _ index: Int32, into out: inout [UInt8], depth: Int) throws(JSONError) {
        guard lua_checkstack(L, 4) != 0 else { throw JSONError(message: "stack overflow") }
        completeHTTPAnswer(L, index)
        let length = Int(lua_rawlen(L, index))
        var count = 0
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            count += 1
            mw_pop(L, 1)
        }
        if length > 0 && count == length {
            out.append(UInt8(ascii: "["))
            for position in 1...length {
                if position > 1 { out.append(UInt8(ascii: ",")) }
                lua_rawgeti(L, index, lua_Integer(position))
                defer { mw_pop(L, 1) }
                try encodeValue(L, lua_gettop(L), into: &out, depth: depth + 1)
            }
            out.append(UInt8(ascii: "]"))
            return
        }
        out.append(UInt8(ascii: "{"))
        var first = true
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            let keyType = lua_type(L, -2)
            guard keyType == LUA_TSTRING || keyType == LUA_TNUMBER else {
                mw_pop(L, 2)
                throw JSONError(message: "cannot encode a table key of type \(String(cString: mw_typename(L, -2)))")
            }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            lua_pushvalue(L, -2)  // tolstring on a copy, never on the key lua_next needs
            _ = L.withBytes(at: -1) { appendString($0, into: &out) }
            mw_pop(L, 1)
            out.append(UInt8(ascii: ":"))
            do {
                try encodeValue(L, lua_gettop(L), into: &out, depth: depth + 1)
            } catch {
                mw_pop(L, 2)
                throw error
            }
            mw_pop(L, 1)
        }
        out.append(UInt8(ascii: "}"))
    }

    private static func appendString(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20, 0x7F:
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48])
                Hexadecimal.append(byte, to: &out)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Decodes JSON text, pushing one value; on failure pushes nothing and returns the message.
    static func decode(_ L: LuaThread, _ bytes: UnsafeRawBufferPointer) -> String? {
        let top = lua_gettop(L)
        var parser = JSONParser(bytes: bytes, L: L)
        do throws(JSONError) {
            parser.skipSpace()
            try parser.value(depth: 0)
            parser.skipSpace()
            guard parser.position == bytes.count else { throw parser.error("unexpected trailing characters") }
            return nil
        } catch {
            lua_settop(L, top)
            return error.message
        }
    }
}

/// A recursive-descent JSON parser that pushes what it reads onto a Lua stack.
private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let L: LuaThread
    var position = 0

    init(bytes: UnsafeRawBufferPointer, L: LuaThread) {
        self.bytes = bytes
        self.L = L
    }

    func error(_ message: String) -> LuaJSON.JSONError {
        LuaJSON.JSONError(message: "\(message) at byte \(position + 1)")
    }

    mutating func skipSpace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func expect(_ literal: String) throws(LuaJSON.JSONError) {
        for byte in literal.utf8 {
            guard current == byte else { throw error("invalid literal") }
            position += 1
        }
    }

    mutating func value(depth: Int) throws(LuaJSON.JSONError) {
        guard depth < LuaJSON.maximumDepth else { throw error("nesting deeper than \(LuaJSON.maximumDepth)") }
        guard lua_checkstack(L, 3) != 0 else { throw error("stack overflow") }
        switch current {
        case UInt8(ascii: "{"): try object(depth: depth)
        case UInt8(ascii: "["): try array(depth: depth)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try expect("true"); lua_pushboolean(L, 1)
        case UInt8(ascii: "f"): try expect("false"); lua_pushboolean(L, 0)
        case UInt8(ascii: "n"): try expect("null"); lua_pushlightuserdata(L, nil)
        case .some(let byte) where byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte):
            try number()
        case nil: throw error("unexpected end of input")
        default: throw error("unexpected character")
        }
    }

    private mutating func object(depth: Int) throws(LuaJSON.JSONError) {
        position += 1
        lua_createtable(L, 0, 4)
        skipSpace()
        if current == UInt8(ascii: "}") { position += 1; return }
        while true {
            skipSpace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
            try string()
            skipSpace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
            position += 1
            skipSpace()
            try value(depth: depth + 1)
            lua_rawset(L, -3)
            skipSpace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return
            default: throw error("expected ',' or '}'")
            }
        }
    }

    private mutating func array(depth: Int) throws(LuaJSON.JSONError) {
        position += 1
        lua_createtable(L, 4, 0)
        skipSpace()
        if current == UInt8(ascii: "]") { position += 1; return }
        var index: lua_Integer = 1
        while true {
            skipSpace()
            try value(depth: depth + 1)
            lua_rawseti(L, -2, index)
            index += 1
            skipSpace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return
            default: throw error("expected ',' or ']'")
            }
        }
    }

    private mutating func number() throws(LuaJSON.JSONError) {
        let start = position
        var isInteger = true
        if current == UInt8(ascii: "-") { position += 1 }
        func digits(_ parser: inout JSONParser) -> Int {
            let begin = parser.position
            while let byte = parser.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { parser.position += 1 }
            return parser.position - begin
        }
        let integerDigits = digits(&self)
        guard integerDigits > 0 else { throw error("invalid number") }
        if integerDigits > 1 && bytes[position - integerDigits] == UInt8(ascii: "0") { throw error("leading zero in number") }
        if current == UInt8(ascii: ".") {
            position += 1
            isInteger = false
            guard digits(&self) > 0 else { throw error("invalid number") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            isInteger = false
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits(&self) > 0 else { throw error("invalid number") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if isInteger, let integer = Int64(text) {
            lua_pushinteger(L, integer)
        } else if let double = Double(text) {
            lua_pushnumber(L, double)
        } else {
            throw error("invalid number")
        }
    }

    private mutating func string() throws(LuaJSON.JSONError) {
        position += 1
        let start = position
        while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\"), byte >= 0x20 { position += 1 }
        if current == UInt8(ascii: "\"") {
            let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
            _ = lua_pushlstring(L, slice.baseAddress?.assumingMemoryBound(to: CChar.self), slice.count)
            position += 1
            return
        }
        var out = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        while true {
            guard let byte = current else { throw error("unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                L.push(bytes: out)
                return
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case 0..<0x20:
                throw error("control character in string")
            default:
                out.append(byte)
            }
        }
    }

    private mutating func escape(into out: inout [UInt8]) throws(LuaJSON.JSONError) {
        guard let byte = current else { throw error("unterminated escape") }
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(byte)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error("unpaired surrogate")
                }
                position += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw error("unpaired surrogate")
            }
            out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            throw error("invalid escape")
        }
    }

    private mutating func hex4() throws(LuaJSON.JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }
}
