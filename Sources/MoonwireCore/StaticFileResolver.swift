// Maps a decoded request path to a file under the www root, refusing every way out of it.
// Runs on NIO's thread pool because stat and realpath block.
import Glibc

/// A regular file to send and what validators are made of.
struct StaticFile: Equatable {
    var path: String
    var size: Int
    /// Modification time in nanoseconds since the epoch.
    var modified: Int64
    var contentType: String

    init(path: String, status: stat) {
        self.path = path
        self.size = Int(status.st_size)
        self.modified = Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
        self.contentType = MIMETypes.type(forPath: path)
    }

    /// A strong validator: changes whenever the size or the modification time does.
    var etag: String { "\"\(String(size, radix: 16))-\(String(modified, radix: 16))\"" }

    /// The modification time in whole seconds, as Last-Modified carries it.
    var modifiedSeconds: Int { Int(modified / 1_000_000_000) }
}

/// The outcome of resolving a path against the www root.
enum StaticFileResolution: Equatable {
    /// A regular file to send.
    case file(StaticFile)
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
        return .file(StaticFile(path: canonical, status: info))
    }

    /// A file's status, nil when it cannot be read. Exposed for files handlers name directly.
    static func fileStatus(_ path: String) -> stat? {
        var info = stat()
        return stat(path, &info) == 0 ? info : nil
    }

    private func fileStatus(_ path: String) -> stat? { Self.fileStatus(path) }
}
