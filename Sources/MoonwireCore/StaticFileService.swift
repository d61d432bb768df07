// Turns "serve this path" and "send this file" into prepared responses, doing the blocking
// file-system work on NIO's thread pool so no event loop ever waits on the disk; a small file
// already read is answered from the loop's StaticFileCache after one stat, with no future.
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves files from the www root, or from the roots virtual hosts name.
final class StaticFileService: Sendable {
    private let resolver: StaticFileResolver?
    private let threadPool: NIOThreadPool
    /// Reads file regions into buffers for transports that cannot sendfile (TLS, HTTP/2).
    let fileIO: NonBlockingFileIO
    /// Reports running out of file descriptors, once per episode.
    let descriptors: DescriptorShortage
    /// Resolvers of other roots, canonicalised once each (nil: the folder does not exist).
    private let otherRoots = NIOLockedValueBox<[String: StaticFileResolver?]>([:])

    init(root: String, threadPool: NIOThreadPool, descriptors: DescriptorShortage) {
        self.resolver = StaticFileResolver(root: root)
        self.descriptors = descriptors
        self.threadPool = threadPool
        self.fileIO = NonBlockingFileIO(threadPool: threadPool)
    }

    private func resolver(for root: String?) -> StaticFileResolver? {
        guard let root else { return resolver }
        if let known = otherRoots.withLockedValue({ $0[root] }) { return known }
        let made = StaticFileResolver(root: root)
        otherRoots.withLockedValue { $0[root] = made }
        return made
    }

    /// The answer to a request path from `cache`, made here on the loop, when the cache holds
    /// the file and it is still the file on disk (one stat); nil otherwise, and then `serve`
    /// answers. A plain GET takes the answer the cache made with the bytes; any other request
    /// (conditions, ranges, HEAD, a handler's fields) is prepared from the cached bytes.
    func cachedAnswer(
        path: String, root: String?, request: HTTPHeaders, headOnly: Bool, extraHeaders: HTTPHeaders,
        cache: StaticFileCache
    ) -> CachedAnswer? {
        guard let cached = cache.current(StaticFileCache.key(path: path, root: root)) else { return nil }
        if let answer = cached.plainAnswer(request: request, headOnly: headOnly, extraHeaders: extraHeaders) { return answer }
        let prepared = try? Self.prepare(
            .file(cached.file), request: request, headOnly: headOnly, status: 200, extraHeaders: extraHeaders,
            bytes: .cached(cached))
        return prepared.map { CachedAnswer(response: $0, fieldLines: nil) }
    }

    /// Serves a request path (`/docs/`) from the root, honouring validators and ranges: resolved
    /// on the thread pool; a small file read there joins `cache` (see `cachedAnswer`).
    func serve(
        path: String, root: String?, request: HTTPHeaders, headOnly: Bool, extraHeaders: HTTPHeaders,
        cache: StaticFileCache, on loop: EventLoop
    ) -> EventLoopFuture<PreparedResponse> {
        let key = StaticFileCache.key(path: path, root: root)
        let promise = loop.makePromise(of: PreparedResponse.self)
        let loopCache = NIOLoopBound(cache, eventLoop: loop)
        threadPool.submit { state in
            guard case .active = state else { return promise.fail(NIOThreadPoolError.ThreadPoolInactive()) }
            let resolver = self.resolver(for: root)
            let resolution = resolver?.resolve(path) ?? .notFound
            let cached = resolver.flatMap { resolver -> CachedFile? in
                guard case .file(let file) = resolution else { return nil }
                return CachedFile.read(file, statPath: CachedFile.statPath(root: resolver.root, path: path), now: time(nil))
            }
            if let cached { loop.execute { loopCache.value.insert(cached, for: key) } }
            promise.completeWith(Result {
                try Self.prepare(
                    resolution, request: request, headOnly: headOnly, status: 200, extraHeaders: extraHeaders,
                    bytes: cached.map { .cached($0) } ?? .disk)
            })
        }
        return promise.futureResult
    }

    /// Sends a file a handler named: absolute paths as given, relative ones under the root
    /// with the same rules as static requests. The handler's status and headers are kept.
    func send(file: String, response: HTTPResponse, request: HTTPHeaders, headOnly: Bool, on loop: EventLoop)
        -> EventLoopFuture<PreparedResponse>
    {
        let resolver = self.resolver
        return onThreadPool(completing: loop) {
            let resolution: StaticFileResolution
            if file.hasPrefix("/") {
                if let info = StaticFileResolver.fileStatus(file), info.st_mode & S_IFMT == S_IFREG {
                    resolution = .file(StaticFile(path: file, status: info))
                } else {
                    resolution = .notFound
                }
            } else {
                resolution = resolver?.resolve("/" + file) ?? .notFound
            }
            return try Self.prepare(
                resolution, request: request, headOnly: headOnly, status: response.status, extraHeaders: response.headers,
                bytes: .disk)
        }
    }

    /// Opens a file again to send the rest of its body (`FileBodyCopier` closes files while a
    /// client cannot take more); fails with `FileChanged` when its size or modification time
    /// is no longer what the answer's headers announced.
    func reopen(_ file: StaticFile, on loop: EventLoop) -> EventLoopFuture<NIOFileHandle> {
        threadPool.runIfActive(eventLoop: loop) {
            let handle = try NIOFileHandle(_deprecatedPath: file.path)
            var info = stat()
            let status = try handle.withUnsafeFileDescriptor { fstat($0, &info) }
            let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            guard status == 0, Int(info.st_size) == file.size, modified == file.modified else {
                try? handle.close()
                throw FileChanged(path: file.path)
            }
            return handle
        }
    }

    /// Runs `body` on the thread pool, its answer delivered on `loop`. NIO's `runIfActive`
    /// does the same but, generic and not inlinable, looked up the metadata of its `Result`
    /// nine times per file served.
    private func onThreadPool(
        completing loop: EventLoop, _ body: @escaping @Sendable () throws -> PreparedResponse
    ) -> EventLoopFuture<PreparedResponse> {
        let promise = loop.makePromise(of: PreparedResponse.self)
        threadPool.submit { state in
            guard case .active = state else { return promise.fail(NIOThreadPoolError.ThreadPoolInactive()) }
            promise.completeWith(Result(catching: body))
        }
        return promise.futureResult
    }

    /// Where an answer's bytes come from: the file, opened for it, or the loop's cached copy.
    private enum FileBytes {
        case disk
        case cached(CachedFile)
    }

    private static func prepare(
        _ resolution: StaticFileResolution, request: HTTPHeaders, headOnly: Bool, status: Int, extraHeaders: HTTPHeaders,
        bytes: FileBytes
    ) throws -> PreparedResponse {
        switch resolution {
        case .file(let file):
            var headers = fileHeaders(file, extraHeaders: extraHeaders)
            // Conditions and ranges describe the file itself; a handler that chose another
            // status (a 404 page from disk, say) gets the file as it is.
            let plan = status == 200 ? FileResponsePlan(file: file, headers: request, rangesAllowed: true) : .whole
            switch plan {
            case .notModified:
                return PreparedResponse(status: 304, headers: headers, body: .bytes(ByteBuffer()))
            case .preconditionFailed:
                return page(412, headers)
            case .unsatisfiable:
                headers.replaceOrAdd(name: "content-range", value: "bytes */\(file.size)")
                return page(416, headers)
            case .whole:
                if ResponseCompression.shouldCompress(
                    status: status, headers: &headers, size: file.size, accepted: ResponseCompression.acceptsGzip(request)),
                    let compressed = try Self.gzip(file, bytes)
                {
                    headers = gzipHeaders(headers, etag: file.etag)
                    if headOnly { headers.replaceOrAdd(name: "content-length", value: String(compressed.readableBytes)) }
                    return PreparedResponse(status: status, headers: headers, body: .bytes(headOnly ? ByteBuffer() : compressed))
                }
                return try body(
                    of: file, bytes, range: 0...max(0, file.size - 1), status: status, headers: headers, headOnly: headOnly)
            case .partial(let range):
                headers.replaceOrAdd(name: "content-range", value: "bytes \(range.lowerBound)-\(range.upperBound)/\(file.size)")
                return try body(of: file, bytes, range: range, status: 206, headers: headers, headOnly: headOnly)
            }
        case .redirect(let location):
            var headers = extraHeaders
            headers.replaceOrAdd(name: "location", value: location)
            return page(301, headers)
        case .badRequest:
            return page(400, extraHeaders)
        case .notFound:
            return page(404, extraHeaders)
        }
    }

    /// The handler's fields with the file's: its type unless the handler chose one, and its
    /// validators in place of any the handler set.
    static func fileHeaders(_ file: StaticFile, extraHeaders: HTTPHeaders) -> HTTPHeaders {
        let own = [
            ("content-type", file.contentType), ("accept-ranges", "bytes"), ("etag", file.etag),
            ("last-modified", HTTPDate.format(file.modifiedSeconds)),
        ]
        // A plain static request brings no fields from a handler: the list is the headers.
        guard !extraHeaders.isEmpty else { return HTTPHeaders(own) }
        var headers = extraHeaders
        if !headers.contains(name: "content-type") { headers.add(name: "content-type", value: file.contentType) }
        for (name, value) in own.dropFirst() { headers.replaceOrAdd(name: name, value: value) }
        return headers
    }

    /// A 200's fields for its gzip variant: the encoding, and an entity tag of its own.
    static func gzipHeaders(_ headers: HTTPHeaders, etag: String) -> HTTPHeaders {
        var headers = headers
        headers.replaceOrAdd(name: "content-encoding", value: "gzip")
        headers.replaceOrAdd(name: "etag", value: ResponseCompression.gzipETag(etag))
        return headers
    }

    /// The whole file, gzip-compressed (files this small are read in one piece).
    private static func gzip(_ file: StaticFile, _ bytes: FileBytes) throws -> ByteBuffer? {
        if case .cached(let cached) = bytes { return cached.gzipped }
        let handle = try NIOFileHandle(_deprecatedPath: file.path)
        defer { try? handle.close() }
        var bytes = [UInt8](repeating: 0, count: file.size)
        let count = try handle.withUnsafeFileDescriptor { descriptor in
            bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        }
        guard count == file.size else { return nil }
        return bytes.withUnsafeBytes { Gzip.compress($0) }
    }

    /// Opens the file for `range` (nothing to open for HEAD or an empty file), or slices the
    /// cached copy.
    private static func body(
        of file: StaticFile, _ bytes: FileBytes, range: ClosedRange<Int>, status: Int, headers: HTTPHeaders, headOnly: Bool
    ) throws -> PreparedResponse {
        var headers = headers
        let length = file.size == 0 ? 0 : range.count
        if headOnly || length == 0 {
            headers.replaceOrAdd(name: "content-length", value: String(length))
            return PreparedResponse(status: status, headers: headers, body: .bytes(ByteBuffer()))
        }
        if case .cached(let cached) = bytes, let slice = cached.contents.getSlice(at: range.lowerBound, length: length) {
            return PreparedResponse(status: status, headers: headers, body: .bytes(slice))
        }
        let handle = try NIOFileHandle(_deprecatedPath: file.path)
        let region = FileRegion(fileHandle: handle, readerIndex: range.lowerBound, endIndex: range.upperBound + 1)
        return PreparedResponse(status: status, headers: headers, body: .file(region, FileOrigin(file)))
    }

    private static func page(_ status: Int, _ extraHeaders: HTTPHeaders) -> PreparedResponse {
        var headers = extraHeaders
        headers.replaceOrAdd(name: "content-type", value: "text/plain; charset=utf-8")
        return PreparedResponse(status: status, headers: headers, body: .bytes(ByteBuffer(string: HTTPResponse.statusText(status))))
    }
}
