// moonwire.options{watchdog = {enabled = true, interval = 5, attempts = 0}}: whether and how a
// failed listener is bound again (ListenerWatchdog.swift has the rules).
import CLua
import MoonwireCore

/// Reads the watchdog table on top of the stack; an error message for a bad key or value.
func readWatchdog(_ L: LuaThread, into settings: inout WatchdogSettings) -> String? {
    guard L.type(at: -1) == LUA_TTABLE else { return "watchdog must be a table" }
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.watchdog, path: "watchdog.") { return error }
    if L.rawField(-1, "enabled") != LUA_TNIL {
        guard L.type(at: -1) == LUA_TBOOLEAN else {
            mw_pop(L, 1)
            return "watchdog.enabled must be true or false"
        }
        settings.enabled = lua_toboolean(L, -1) != 0
    }
    mw_pop(L, 1)
    if L.rawField(-1, "interval") != LUA_TNIL {
        guard let value = L.number(at: -1), value > 0, value.isFinite else {
            mw_pop(L, 1)
            return "watchdog.interval must be a number of seconds (more than 0)"
        }
        settings.interval = value
    }
    mw_pop(L, 1)
    if L.rawField(-1, "attempts") != LUA_TNIL {
        guard let value = L.number(at: -1), value >= 0, value <= 1_000_000, value.rounded() == value else {
            mw_pop(L, 1)
            return "watchdog.attempts must be a whole number (0: for ever)"
        }
        settings.attempts = Int(value)
    }
    mw_pop(L, 1)
    return nil
}
