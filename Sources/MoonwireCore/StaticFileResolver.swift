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
    /// A strong validator: changes whenever the size or the modification time does.
    var etag: String

    init(path: String, status: stat) {
        self.path = path
        self.size = Int(status.st_size)
        self.modified = Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
        self.contentType = MIMETypes.type(forPath: path)
        self.etag = Self.etag(size: size, modified: modified)
    }

    /// `"size-modified"`, both in hexadecimal.
    static func etag(size: Int, modified: Int64) -> String {
        String(ascii: 38) { out in
            out.append(UInt8(ascii: "\""))
            out.append(size, radix: 16)
            out.append(UInt8(ascii: "-"))
            out.append(Int(modified), radix: 16)
            out.append(UInt8(ascii: "\""))
        }
    }

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
        self.rootFolder = self.root + "/"
    }

    /// The root with a trailing slash: what every file served must start with.
    private let rootFolder: String

    /// Resolves a decoded path ("/css/site.css"). Hidden names (".env", ".git") are not served.
    func resolve(_ path: String) -> StaticFileResolution {
        guard path.utf8.first == UInt8(ascii: "/") else { return .badRequest }
        var candidate: String
        switch underRoot(path) {
        case .path(let joined, let depth):
            candidate = joined
            // A name right in the root (canonical already) is its own canonical path unless it
            // is a symbolic link: one lstat, instead of a stat and realpath's readlink per
            // component of the whole path.
            if depth == 1 {
                var info = stat()
                guard lstat(candidate, &info) == 0 else { return .notFound }
                if info.st_mode & S_IFMT == S_IFREG { return .file(StaticFile(path: candidate, status: info)) }
            }
        case .hidden: return .notFound
        case .malformed: return .badRequest
        }
        guard var info = fileStatus(candidate) else { return .notFound }
        if info.st_mode & S_IFMT == S_IFDIR {
            if path.utf8.last != UInt8(ascii: "/") { return .redirect(location: path + "/") }
            candidate += "/index.html"
            guard let indexInfo = fileStatus(candidate) else { return .notFound }
            info = indexInfo
        }
        guard info.st_mode & S_IFMT == S_IFREG, let real = realpath(candidate, nil) else { return .notFound }
        defer { free(real) }
        guard rootFolder.withCString({ strncmp(real, $0, rootFolder.utf8.count) == 0 }) else { return .notFound }
        return .file(StaticFile(path: String(cString: real), status: info))
    }

    /// A request path put under the root.
    private enum Joined {
        /// The path's segments joined under the root ("/a//b/" gives root + "/a/b"), and how
        /// many there are.
        case path(String, depth: Int)
        /// A segment is hidden (404).
        case hidden
        /// A `.` or `..` segment, a backslash or a NUL (400, whatever else the path has).
        case malformed
    }

    /// One pass over the bytes: this runs for every static file served.
    private func underRoot(_ path: String) -> Joined {
        var malformed = false
        var hidden = false
        var depth = 0
        let joined = String(unsafeUninitializedCapacity: root.utf8.count + path.utf8.count) { buffer in
            var count = 0
            for byte in root.utf8 {
                buffer[count] = byte
                count += 1
            }
            var segment = 0
            func endSegment() {
                depth += 1
                let first = buffer[count - segment]
                if first == UInt8(ascii: ".") {
                    if segment == 1 || (segment == 2 && buffer[count - 1] == UInt8(ascii: ".")) { malformed = true }
                    hidden = true
                }
                segment = 0
            }
            for byte in path.utf8 {
                if byte == UInt8(ascii: "\\") || byte == 0 {
                    malformed = true
                    break
                }
                if byte == UInt8(ascii: "/") {
                    if segment > 0 { endSegment() }
                    continue
                }
                if segment == 0 {
                    buffer[count] = UInt8(ascii: "/")
                    count += 1
                }
                buffer[count] = byte
                count += 1
                segment += 1
            }
            if segment > 0 { endSegment() }
            return count
        }
        if malformed { return .malformed }
        return hidden ? .hidden : .path(joined, depth: depth)
    }

    /// A file's status, nil when it cannot be read. Exposed for files handlers name directly.
    static func fileStatus(_ path: String) -> stat? {
        var info = stat()
        return stat(path, &info) == 0 ? info : nil
    }

    private func fileStatus(_ path: String) -> stat? { Self.fileStatus(path) }
}
