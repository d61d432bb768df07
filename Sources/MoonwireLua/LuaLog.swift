// moonwire.log: script log lines go to the server's log with the script's file:line.
import CLua
import Logging

extension LuaVM {
    func installLog() {
        lua_createtable(L, 0, 4)
        L.setFunction("debug", { L in logFromLua(L!, .debug) })
        L.setFunction("info", { L in logFromLua(L!, .info) })
        L.setFunction("warn", { L in logFromLua(L!, .warning) })
        L.setFunction("error", { L in logFromLua(L!, .error) })
    }
}

/// Joins the arguments with spaces (through tostring) and logs them at `level`.
private func logFromLua(_ L: LuaThread, _ level: Logger.Level) -> Int32 {
    let count = lua_gettop(L)
    var parts: [String] = []
    parts.reserveCapacity(Int(count))
    if count > 0 {
        for index in 1...count { parts.append(L.describe(at: index)) }
    }
    let vm = LuaVM.from(L)
    vm.logger.log(level: level, "\(parts.joined(separator: " "))", metadata: ["script": "\(L.callerLocation())"])
    return 0
}
