// Maps a decoded request path to a file under the www root, refusing every way out of it.
// Runs on NIO's thread pool because stat and realpath block.
import Glibc

/// The outcome of resolving a path against the www root.
enum StaticFileResolution: Equatable {
    /// A regular file to send, with its size and media type.
    case file(path: String, size: Int, contentType: String)
    /// A folder asked for without its trailing slash: redirect to `location`.
    case redirect(location: String)
    /// The path is malformed (`..`, backslash, NUL): 400.
    case badRequest
    /// Nothing to serve: 404.
    case notFound
}

/// Resolves request paths against one root folder.
struct StaticFileResolver: Sendable {
    /// The root's canonical path, without a trailing slash.
    let root: String

    /// Canonicalises the root; nil when it does not exist.
    init?(root: String) {
        guard let real = realpath(root, nil) else { return nil }
        defer { free(real) }
        self.root = String(cString: real)
    }

    /// Resolves a decoded path ("/css/site.css"). Hidden names (".env", ".git") are not served.
    func resolve(_ path: String) -> StaticFileResolution {
        guard path.hasPrefix("/"), !path.contains("\\"), !path.utf8.contains(0) else { return .badRequest }
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        if segments.contains(where: { $0 == ".." || $0 == "." }) { return .badRequest }
        if segments.contains(where: { $0.hasPrefix(".") }) { return .notFound }
        var candidate = root + "/" + segments.joined(separator: "/")
        guard var info = fileStatus(candidate) else { return .notFound }
        if info.st_mode & S_IFMT == S_IFDIR {
            if !path.hasSuffix("/") { return .redirect(location: path + "/") }
            candidate += "/index.html"
            guard let indexInfo = fileStatus(candidate) else { return .notFound }
            info = indexInfo
        }
        guard info.st_mode & S_IFMT == S_IFREG, let real = realpath(candidate, nil) else { return .notFound }
        defer { free(real) }
        let canonical = String(cString: real)
        guard canonical.hasPrefix(root + "/") else { return .notFound }
        return .file(path: canonical, size: Int(info.st_size), contentType: MIMETypes.type(forPath: canonical))
    }

    /// A file's status, nil when it cannot be read. Exposed for files handlers name directly.
    static func fileStatus(_ path: String) -> stat? {
        var info = stat()
        return stat(path, &info) == 0 ? info : nil
    }

    private func fileStatus(_ path: String) -> stat? { Self.fileStatus(path) }
}
