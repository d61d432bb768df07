import Foundation
import Logging
import NIOCore

@testable import MoonwireLua

/// A scripts folder of its own for one test, removed with it; the Lua bridge tests write their
/// scripts there and load VMs from it.
final class ScriptsFolder {
    let path = NSTemporaryDirectory() + "moonwire-lua-\(UUID().uuidString)"

    init() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes a script under the folder (subfolders are made as needed).
    func write(_ name: String, _ source: String) throws {
        let file = path + "/" + name
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try source.write(toFile: file, atomically: true, encoding: .utf8)
    }

    /// A VM of the folder with `main` as its main.lua, on `eventLoop` (none: nothing can wait).
    func makeVM(_ main: String = "", eventLoop: EventLoop? = nil) throws -> LuaVM {
        try write("main.lua", main)
        let runtime = LuaRuntime(scriptsDirectory: path, developmentMode: false, logger: Logger(label: "test"))
        return try LuaVM(runtime: runtime, scripts: try ScriptSnapshot.readSettled(directory: path), eventLoop: eventLoop)
    }
}
