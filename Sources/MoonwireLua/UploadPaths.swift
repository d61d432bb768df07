// Where an uploaded file may be written. A client's file name is a hint, never a path: only
// its last component is kept, cleaned of what could escape the upload folder or trouble a
// file system (NUL and control bytes, `..`, a leading dot, names Windows reserves), and
// prefixed with random characters so that two uploads never share a file. A path a script
// chooses (OnHTTPUploadBeforeSaveFile) is relative to the upload folder and must stay in it.
import Foundation

enum UploadPaths {
    /// Names Windows reserves whatever their extension (a file server may share the folder).
    private static let reserved = Set(["con", "prn", "aux", "nul"] + (1...9).flatMap { ["com\($0)", "lpt\($0)"] })

    /// A safe file name from a client's: its last component after `/` or `\`, without NUL,
    /// control bytes or leading dots and spaces, not a reserved name, at most 120 bytes;
    /// "file" when nothing is left.
    static func sanitize(_ clientName: String) -> String {
        let last = clientName.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var cleaned = String(String.UnicodeScalarView(last.unicodeScalars.filter {
            $0.value >= 0x20 && $0.value != 0x7F && !":*?\"<>|".unicodeScalars.contains($0)
        }))
        while let first = cleaned.first, first == "." || first == " " { cleaned.removeFirst() }
        while let last = cleaned.last, last == "." || last == " " { cleaned.removeLast() }
        while cleaned.utf8.count > 120 { cleaned.removeLast() }
        if cleaned.isEmpty { return "file" }
        let stem = cleaned.split(separator: ".", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        return reserved.contains(stem) ? "_" + cleaned : cleaned
    }

    /// The default place of an upload: the folder, a random prefix, the cleaned name.
    static func defaultPath(in folder: String, clientName: String) -> String {
        let prefix = (0..<12).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
        return folder + "/" + prefix + "-" + sanitize(clientName)
    }

    /// A path a script chose, relative to `folder` (or absolute inside it), when it stays in
    /// the folder once `.` and `..` are resolved and holds no NUL; nil otherwise.
    static func resolve(_ chosen: String, in folder: String) -> String? {
        guard !chosen.isEmpty, !chosen.utf8.contains(0) else { return nil }
        let base = normalized(absolute(folder))
        let full = normalized(chosen.hasPrefix("/") ? chosen : base + "/" + chosen)
        guard full.hasPrefix(base + "/"), full.count > base.count + 1 else { return nil }
        return full
    }

    /// `path` made absolute against the working directory.
    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// `/a/./b/../c//d` → `/a/c/d`, without looking at the file system.
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}
