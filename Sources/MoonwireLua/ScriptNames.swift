// How script files are named in errors and tracebacks: relative to the scripts folder's
// parent ("scripts/lib/util.lua"), not as absolute paths that Lua would cut to 60 characters.

/// Maps script paths to the chunk names Lua reports, and back.
struct ScriptNames {
    let directory: String
    /// The folder's own name and a slash, e.g. "scripts/".
    let prefix: String

    init(directory: String) {
        let trimmed = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        self.directory = trimmed
        self.prefix = (trimmed.split(separator: "/").last.map(String.init) ?? trimmed) + "/"
    }

    /// "scripts/lib/util.lua" for "/srv/app/scripts/lib/util.lua".
    func displayName(_ path: String) -> String {
        path.hasPrefix(directory + "/") ? prefix + path.dropFirst(directory.count + 1) : path
    }

    /// The file behind a display name, for showing its source.
    func path(_ displayName: String) -> String {
        displayName.hasPrefix(prefix) ? directory + "/" + displayName.dropFirst(prefix.count) : displayName
    }
}
