// moonwire.re: match, find, gmatch and gsub on PCRE2, the engine routes use, because Lua
// patterns lack alternation, repetition of groups and most of what real validation needs.
// Subjects are Lua strings (bytes); positions are 1-based as in Lua's string library.
import CLua
import CPCRE2
import MoonwireRouting

extension LuaVM {
    func installRegex() {
        lua_createtable(L, 0, 4)
        L.setFunction("match", luaRegexMatch)
        L.setFunction("find", luaRegexFind)
        L.setFunction("gmatch", luaRegexGmatch)
        L.setFunction("gsub", luaRegexGsub)
    }

    /// Compiles (or reuses) a pattern with its flags; raises a clear error for bad ones.
    func regex(_ L: LuaThread, pattern index: Int32, flags flagsIndex: Int32, function: String) -> Regex? {
        guard L.type(at: index) == LUA_TSTRING, let pattern = L.string(at: index) else {
            L.push("moonwire.re.\(function): expected a pattern, got \(L.describe(at: index))")
            return nil
        }
        let flags = L.type(at: flagsIndex) == LUA_TSTRING ? L.string(at: flagsIndex) ?? "" : ""
        let key = flags + "\u{0}" + pattern
        if let cached = regexCache[key] { return cached }
        var options: Regex.Options = []
        for flag in flags {
            switch flag {
            case "i": options.insert(.caseless)
            case "m": options.insert(.multiline)
            case "s": options.insert(.dotAll)
            case "x": options.insert(.extended)
            case "u": options.insert(.utf)
            case "j", "o": break  // OpenResty's JIT and compile-once flags: always on here
            default:
                L.push("moonwire.re.\(function): unknown flag '\(flag)' (use i, m, s, x, u)")
                return nil
            }
        }
        do {
            let compiled = try Regex(pattern, options: options)
            if regexCache.count >= 1000 { regexCache.removeAll(keepingCapacity: true) }
            regexCache[key] = compiled
            return compiled
        } catch {
            L.push("moonwire.re.\(function): \(error)")
            return nil
        }
    }
}

/// Runs `regex` on the string at `subjectIndex` from a byte offset.
private func search(_ L: LuaThread, _ regex: Regex, subject subjectIndex: Int32, from offset: Int, options: UInt32 = 0)
    -> Result<RegexMatch?, RegexError>
{
    L.withBytes(at: subjectIndex) { bytes in
        do throws(RegexError) {
            return .success(try regex.match(bytes, from: offset, options: options))
        } catch {
            return .failure(error)
        }
    } ?? .success(nil)
}

/// A Lua `init` argument (1-based, negative from the end) as a byte offset.
private func startOffset(_ L: LuaThread, _ index: Int32, length: Int) -> Int {
    guard let value = L.number(at: index) else { return 0 }
    let position = Int(value)
    if position > 0 { return min(position - 1, length) }
    if position < 0 { return max(0, length + position) }
    return 0
}

/// Pushes `{[0] = whole, [1] = ..., name = ...}` for a match of the subject at `subjectIndex`.
private func pushCaptures(_ L: LuaThread, _ found: RegexMatch, _ regex: Regex, subject subjectIndex: Int32) {
    lua_createtable(L, Int32(regex.groupCount), Int32(regex.names.count + 1))
    _ = L.withBytes(at: subjectIndex) { bytes in
        for (group, range) in found.ranges.enumerated() {
            guard let range else { continue }
            L.push(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]))
            lua_rawseti(L, -2, lua_Integer(group))
        }
        for (name, group) in regex.names {
            guard group < found.ranges.count, let range = found.ranges[group] else { continue }
            L.push(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]))
            L.setField(-2, name)
        }
    }
}

private func subjectLength(_ L: LuaThread, _ index: Int32) -> Int? {
    guard L.type(at: index) == LUA_TSTRING || L.type(at: index) == LUA_TNUMBER else { return nil }
    return Int(lua_rawlen(L, index))
}

/// `moonwire.re.match(subject, pattern [, flags [, init]])` → captures table, or nil.
private let luaRegexMatch: LuaFunction = { L in
    let L = L!
    guard let length = subjectLength(L, 1) else { return L.raise("moonwire.re.match: expected a string subject") }
    guard let regex = LuaVM.from(L).regex(L, pattern: 2, flags: 3, function: "match") else { return LuaReturn.raise }
    switch search(L, regex, subject: 1, from: startOffset(L, 4, length: length)) {
    case .success(let found?):
        pushCaptures(L, found, regex, subject: 1)
        return 1
    case .success(nil):
        lua_pushnil(L)
        return 1
    case .failure(let error):
        return L.raise("moonwire.re.match: \(error.message)")
    }
}

/// `moonwire.re.find(subject, pattern [, flags [, init]])` → start, end (inclusive), or nil.
private let luaRegexFind: LuaFunction = { L in
    let L = L!
    guard let length = subjectLength(L, 1) else { return L.raise("moonwire.re.find: expected a string subject") }
    guard let regex = LuaVM.from(L).regex(L, pattern: 2, flags: 3, function: "find") else { return LuaReturn.raise }
    switch search(L, regex, subject: 1, from: startOffset(L, 4, length: length)) {
    case .success(let found?):
        let whole = found.ranges[0]!
        lua_pushinteger(L, lua_Integer(whole.lowerBound + 1))
        lua_pushinteger(L, lua_Integer(whole.upperBound))
        return 2
    case .success(nil):
        lua_pushnil(L)
        return 1
    case .failure(let error):
        return L.raise("moonwire.re.find: \(error.message)")
    }
}

/// Finds the next match at or after `offset`, stepping past empty matches as pcre2demo does:
/// after an empty match, retry at the same place for a non-empty one, else move one byte on.
private func nextMatch(_ L: LuaThread, _ regex: Regex, subject: Int32, offset: Int, afterEmpty: Bool, length: Int)
    -> Result<RegexMatch?, RegexError>
{
    guard offset <= length else { return .success(nil) }
    if afterEmpty {
        switch search(L, regex, subject: subject, from: offset, options: PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) {
        case .success(nil):
            guard offset < length else { return .success(nil) }
            return search(L, regex, subject: subject, from: nextCharacter(L, subject, after: offset, utf: regex.options.contains(.utf)))
        case let other: return other
        }
    }
    return search(L, regex, subject: subject, from: offset)
}

/// The offset one character on: one byte, or in UTF mode past the continuation bytes, since
/// PCRE2 refuses to start a UTF match inside a character.
private func nextCharacter(_ L: LuaThread, _ subject: Int32, after offset: Int, utf: Bool) -> Int {
    var next = offset + 1
    guard utf else { return next }
    _ = L.withBytes(at: subject) { bytes in
        while next < bytes.count, bytes[next] & 0xC0 == 0x80 { next += 1 }
    }
    return next
}

/// `moonwire.re.gmatch(subject, pattern [, flags])` → an iterator of captures tables.
private let luaRegexGmatch: LuaFunction = { L in
    let L = L!
    guard subjectLength(L, 1) != nil else { return L.raise("moonwire.re.gmatch: expected a string subject") }
    guard LuaVM.from(L).regex(L, pattern: 2, flags: 3, function: "gmatch") != nil else { return LuaReturn.raise }
    lua_settop(L, 3)
    lua_pushinteger(L, 0)  // next offset
    lua_pushboolean(L, 0)  // the previous match was empty
    mw_pushswiftclosure(L, luaRegexGmatchStep, 5)
    return 1
}

private let luaRegexGmatchStep: LuaFunction = { L in
    let L = L!
    let subject = mw_upvalueindex(2)
    guard let regex = LuaVM.from(L).regex(L, pattern: mw_upvalueindex(3), flags: mw_upvalueindex(4), function: "gmatch"),
        let length = subjectLength(L, subject)
    else { return LuaReturn.raise }
    let offset = Int(mw_tointeger(L, mw_upvalueindex(5), nil))
    let afterEmpty = lua_toboolean(L, mw_upvalueindex(6)) != 0
    switch nextMatch(L, regex, subject: subject, offset: offset, afterEmpty: afterEmpty, length: length) {
    case .success(let found?):
        let whole = found.ranges[0]!
        lua_pushinteger(L, lua_Integer(whole.upperBound))
        mw_replace(L, mw_upvalueindex(5))
        lua_pushboolean(L, whole.isEmpty ? 1 : 0)
        mw_replace(L, mw_upvalueindex(6))
        pushCaptures(L, found, regex, subject: subject)
        return 1
    case .success(nil):
        lua_pushinteger(L, lua_Integer(length + 1))
        mw_replace(L, mw_upvalueindex(5))
        lua_pushnil(L)
        return 1
    case .failure(let error):
        return L.raise("moonwire.re.gmatch: \(error.message)")
    }
}

/// `moonwire.re.gsub(subject, pattern, replacement [, flags])` → new string, count. The
/// replacement is a string with `$0`...`$9`, `${name}` and `$$`, a function given the
/// captures table (returning nil or false keeps the match), or a table indexed by the match.
private let luaRegexGsub: LuaFunction = { L in
    let L = L!
    guard let length = subjectLength(L, 1) else { return L.raise("moonwire.re.gsub: expected a string subject") }
    guard let regex = LuaVM.from(L).regex(L, pattern: 2, flags: 4, function: "gsub") else { return LuaReturn.raise }
    let kind = L.type(at: 3)
    guard kind == LUA_TSTRING || kind == LUA_TNUMBER || kind == LUA_TFUNCTION || kind == LUA_TTABLE else {
        return L.raise("moonwire.re.gsub: the replacement must be a string, a function or a table")
    }
    let template = kind == LUA_TSTRING || kind == LUA_TNUMBER ? L.withBytes(at: 3) { Array($0) } ?? [] : []
    var output: [UInt8] = []
    var count = 0
    var offset = 0, copied = 0
    var afterEmpty = false
    while true {
        let found: RegexMatch
        switch nextMatch(L, regex, subject: 1, offset: offset, afterEmpty: afterEmpty, length: length) {
        case .success(let next?): found = next
        case .success(nil):
            _ = L.withBytes(at: 1) { output.append(contentsOf: $0[copied...]) }
            L.push(bytes: output)
            lua_pushinteger(L, lua_Integer(count))
            return 2
        case .failure(let error):
            return L.raise("moonwire.re.gsub: \(error.message)")
        }
        let whole = found.ranges[0]!
        _ = L.withBytes(at: 1) { output.append(contentsOf: $0[copied..<whole.lowerBound]) }
        switch kind {
        case LUA_TFUNCTION, LUA_TTABLE:
            if kind == LUA_TFUNCTION {
                lua_pushvalue(L, 3)
                pushCaptures(L, found, regex, subject: 1)
                // Protected, so an error in the callback never unwinds through this frame.
                if mw_pcallscript(L, 1, 1) != LUA_OK { return LuaReturn.raise }
            } else {
                _ = L.withBytes(at: 1) { L.push(bytes: UnsafeRawBufferPointer(rebasing: $0[whole])) }
                // Protected too: the table's __index is the script's code.
                if mw_pgettable(L, 3) != LUA_OK { return LuaReturn.raise }
            }
            if lua_toboolean(L, -1) == 0 {
                _ = L.withBytes(at: 1) { output.append(contentsOf: $0[whole]) }
            } else if let replaced = L.withBytes(at: -1, { Array($0) }) {
                output.append(contentsOf: replaced)
            } else {
                return L.raise("moonwire.re.gsub: the replacement function returned a \(String(cString: mw_typename(L, -1)))")
            }
            mw_pop(L, 1)
        default:
            _ = L.withBytes(at: 1) { expand(template, found, regex, subject: $0, into: &output) }
        }
        count += 1
        copied = whole.upperBound
        offset = whole.upperBound
        afterEmpty = whole.isEmpty
    }
}

/// Expands `$n`, `${name}` and `$$` of a replacement template.
private func expand(_ template: [UInt8], _ found: RegexMatch, _ regex: Regex, subject: UnsafeRawBufferPointer, into output: inout [UInt8]) {
    func append(group: Int) {
        guard group < found.ranges.count, let range = found.ranges[group] else { return }
        output.append(contentsOf: subject[range])
    }
    var index = 0
    while index < template.count {
        let byte = template[index]
        guard byte == UInt8(ascii: "$"), index + 1 < template.count else {
            output.append(byte)
            index += 1
            continue
        }
        let next = template[index + 1]
        if next == UInt8(ascii: "$") {
            output.append(byte)
            index += 2
        } else if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next) {
            append(group: Int(next - UInt8(ascii: "0")))
            index += 2
        } else if next == UInt8(ascii: "{"), let close = template[(index + 2)...].firstIndex(of: UInt8(ascii: "}")) {
            let name = String(decoding: template[(index + 2)..<close], as: UTF8.self)
            if let group = Int(name) {
                append(group: group)
            } else if let group = regex.names.first(where: { $0.name == name })?.group {
                append(group: group)
            }
            index = close + 1
        } else {
            output.append(byte)
            index += 1
        }
    }
}
