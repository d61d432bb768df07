// `moonwire check`: compiles every script and runs the entry point the way `serve` would,
// so errors surface with file:line before a deploy rather than after.
import Logging

/// Validates a scripts folder.
public enum ScriptCheck {
    /// Returns every error found, each starting with `file:line:` where Lua knows it.
    public static func errors(inScriptsDirectory directory: String, logger: Logger) -> [String] {
        let scripts: ScriptSnapshot
        do {
            scripts = try ScriptSnapshot.readSettled(directory: directory)
        } catch {
            return ["\(error)"]
        }
        guard scripts.source("main.lua") != nil else {
            return ["\(scripts.names.prefix)main.lua: not found (the entry point of the scripts folder)"]
        }
        let errors = scripts.paths.compactMap { LuaVM.compileError(of: $0, in: scripts) }
        guard errors.isEmpty else { return errors }
        do {
            let runtime = LuaRuntime(scriptsDirectory: directory, developmentMode: true, logger: logger)
            _ = try LuaVM(runtime: runtime, scripts: scripts, eventLoop: nil)
            return []
        } catch let error as LuaScriptError {
            return [error.description]
        } catch {
            return ["\(error)"]
        }
    }
}
