// `moonwire check`: compiles every script and runs the entry point the way `serve` would,
// so errors surface with file:line before a deploy rather than after.
import Foundation
import Logging

/// Validates a scripts folder.
public enum ScriptCheck {
    /// Returns every error found, each starting with `file:line:` where Lua knows it.
    public static func errors(inScriptsDirectory directory: String, logger: Logger) -> [String] {
        var errors: [String] = []
        let files = luaFiles(in: directory)
        if !files.contains("\(directory)/main.lua") {
            return ["\(ScriptNames(directory: directory).displayName("\(directory)/main.lua")): not found (the entry point of the scripts folder)"]
        }
        for file in files {
            if let error = LuaVM.compileError(file: file, names: ScriptNames(directory: directory)) { errors.append(error) }
        }
        guard errors.isEmpty else { return errors }
        do {
            let runtime = LuaRuntime(scriptsDirectory: directory, developmentMode: true, logger: logger)
            _ = try LuaVM(runtime: runtime, eventLoop: nil)
        } catch let error as LuaScriptError {
            errors.append(error.description)
        } catch {
            errors.append("\(error)")
        }
        return errors
    }

    private static func luaFiles(in directory: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        return enumerator.compactMap { $0 as? String }.filter { $0.hasSuffix(".lua") }.sorted().map { "\(directory)/\($0)" }
    }
}
