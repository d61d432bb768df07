// Small static files kept in memory per event loop, so that a file already served is answered
// on the loop itself: one stat to see it is unchanged, no hop to the thread pool and back, no
// open, no sendfile, and for a plain GET not even its header fields made again. Large files,
// new files and changed files keep the thread pool.
import Glibc
import NIOCore
import NIOHTTP1

/// A small file's bytes and what they were read from.
final class CachedFile: Sendable {
    let file: StaticFile
    /// The file's identity when it was read: a request is answered from `contents` only while
    /// `statPath` still names this inode with this size and modification time.
    let device: UInt
    let inode: UInt
    /// The path the request names under the root (an index file for a folder): stat follows
    /// its links as they are now, so a link moved elsewhere leads to another inode, a miss.
    let statPath: String
    let contents: ByteBuffer
    /// The gzip variant, made on the thread pool when the type is one that is compressed.
    let gzipped: ByteBuffer?
    /// The header fields of a 200 with the whole file, and of its gzip variant: made once with
    /// the bytes, so a plain GET answered from here formats no validator or date.
    let headers: HTTPHeaders
    let gzipHeaders: HTTPHeaders?
    /// The same fields as the lines of an HTTP/1.1 head, copied as they are into each one.
    let fieldLines: ByteBuffer
    let gzipFieldLines: ByteBuffer?

    init(file: StaticFile, device: UInt, inode: UInt, statPath: String, contents: ByteBuffer, gzipped: ByteBuffer?) {
        self.file = file
        self.device = device
        self.inode = inode
        self.statPath = statPath
        self.contents = contents
        self.gzipped = gzipped
        var headers = StaticFileService.fileHeaders(file, extraHeaders: [:])
        let compressible = ResponseCompression.shouldCompress(status: 200, headers: &headers, size: file.size, accepted: true)
        let gzipHeaders = compressible && gzipped != nil ? StaticFileService.gzipHeaders(headers, etag: file.etag) : nil
        self.headers = headers
        self.gzipHeaders = gzipHeaders
        self.fieldLines = HTTP1ResponseSerializer.fieldLines(headers)
        self.gzipFieldLines = gzipHeaders.map(HTTP1ResponseSerializer.fieldLines)
    }

    /// Memory held: both variants' bytes (what the cache's bound counts).
    var bytes: Int { contents.readableBytes + (gzipped?.readableBytes ?? 0) }

    /// The answer to a plain GET (no condition, no range, no handler's fields) of a file that
    /// is not empty, ready as it is; nil for any other request, which `StaticFileService`
    /// prepares field by field.
    func plainAnswer(request: HTTPHeaders, headOnly: Bool, extraHeaders: HTTPHeaders) -> CachedAnswer? {
        guard !headOnly, extraHeaders.isEmpty, file.size > 0, FileResponsePlan.isUnconditional(request) else { return nil }
        if let gzipped, let gzipHeaders, let gzipFieldLines, ResponseCompression.acceptsGzip(request) {
            return CachedAnswer(
                response: PreparedResponse(status: 200, headers: gzipHeaders, body: .bytes(gzipped)), fieldLines: gzipFieldLines)
        }
        return CachedAnswer(response: PreparedResponse(status: 200, headers: headers, body: .bytes(contents)), fieldLines: fieldLines)
    }

    /// The path a request path names under `root`; a folder's is its index file's.
    static func statPath(root: String, path: String) -> String {
        root + path + (path.utf8.last == UInt8(ascii: "/") ? "index.html" : "")
    }

    /// Whether `info` describes the file these bytes came from.
    func matches(_ info: stat) -> Bool {
        UInt(info.st_dev) == device && UInt(info.st_ino) == inode && Self.describes(info, file)
    }

    private static func describes(_ info: stat, _ file: StaticFile) -> Bool {
        info.st_mode & S_IFMT == S_IFREG && Int(info.st_size) == file.size
            && Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec) == file.modified
    }

    /// Reads `file` whole, on the thread pool, when it is small and has not been written in the
    /// last second. A file written again within the same tick of the file system's clock keeps
    /// its modification time; one that old changes it when it is written again, so a cached
    /// copy is never taken for current after a change.
    static func read(_ file: StaticFile, statPath: String, now: time_t) -> CachedFile? {
        guard file.size <= StaticFileCache.largestFile, file.modifiedSeconds < Int(now) - 1 else { return nil }
        let descriptor = open(file.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, describes(info, file) else { return nil }
        var contents = ByteBufferAllocator().buffer(capacity: file.size)
        let count = contents.writeWithUnsafeMutableBytes(minimumWritableBytes: file.size) { bytes in
            max(0, pread(descriptor, bytes.baseAddress, file.size, 0))
        }
        guard count == file.size else { return nil }
        var headers = HTTPHeaders([("content-type", file.contentType)])
        let gzipped = ResponseCompression.shouldCompress(status: 200, headers: &headers, size: file.size, accepted: true)
            ? contents.withUnsafeReadableBytes { Gzip.compress($0) } : nil
        return CachedFile(
            file: file, device: UInt(info.st_dev), inode: UInt(info.st_ino), statPath: statPath, contents: contents,
            gzipped: gzipped)
    }
}

/// An answer from the cache, with its header fields already serialized when it is a plain
/// GET's (nil: the writer serializes `response.headers`).
struct CachedAnswer {
    var response: PreparedResponse
    var fieldLines: ByteBuffer?
}

/// One event loop's cache of small files by request path. Not thread-safe: only its loop uses it.
final class StaticFileCache {
    /// Files up to this size are kept; larger ones are sent from disk with sendfile.
    static let largestFile = 32 * 1024
    /// Bounds per loop: past either, the cache starts again empty (a working set larger than
    /// this is served from disk, as before the cache). The bytes are a file's and its gzip
    /// variant's.
    static let mostFiles = 1024
    static let mostBytes = 16 * 1024 * 1024

    private var files: [String: CachedFile] = [:]
    private var bytes = 0

    /// The key of a request path under a root (nil: the server's www root).
    static func key(path: String, root: String?) -> String {
        guard let root else { return path }
        return root + "\0" + path
    }

    /// The cached file for `key` if it is still the file on disk (one stat); a changed, moved
    /// or deleted file is dropped and nil returned.
    func current(_ key: String) -> CachedFile? {
        guard let cached = files[key] else { return nil }
        var info = stat()
        // withCString lends the string's own bytes; passing the String makes a C copy per call.
        if cached.statPath.withCString({ stat($0, &info) }) == 0, cached.matches(info) { return cached }
        files[key] = nil
        bytes -= cached.bytes
        return nil
    }

    /// Keeps `cached` for `key` (a file read on the thread pool, handed over on this loop).
    func insert(_ cached: CachedFile, for key: String) {
        if let old = files.removeValue(forKey: key) { bytes -= old.bytes }
        if files.count >= Self.mostFiles || bytes + cached.bytes > Self.mostBytes {
            files.removeAll()
            bytes = 0
        }
        files[key] = cached
        bytes += cached.bytes
    }
}
