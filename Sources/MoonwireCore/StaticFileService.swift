// Turns "serve this path" and "send this file" into prepared responses, doing the blocking
// file-system work on NIO's thread pool so no event loop ever waits on the disk.
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves files from the www root.
final class StaticFileService: Sendable {
    private let resolver: StaticFileResolver?
    private let threadPool: NIOThreadPool

    init(root: String, threadPool: NIOThreadPool) {
        self.resolver = StaticFileResolver(root: root)
        self.threadPool = threadPool
    }

    /// Serves a request path (`/docs/`) from the root.
    func serve(path: String, headOnly: Bool, extraHeaders: HTTPHeaders, on loop: EventLoop)
        -> EventLoopFuture<PreparedResponse>
    {
        let resolver = self.resolver
        return threadPool.runIfActive(eventLoop: loop) {
            guard let resolver else { return Self.page(404, extraHeaders) }
            return try Self.prepare(resolver.resolve(path), headOnly: headOnly, extraHeaders: extraHeaders)
        }
    }

    /// Sends a file a handler named: absolute paths as given, relative ones under the root
    /// with the same rules as static requests.
    func send(file: String, response: HTTPResponse, headOnly: Bool, on loop: EventLoop)
        -> EventLoopFuture<PreparedResponse>
    {
        let resolver = self.resolver
        return threadPool.runIfActive(eventLoop: loop) {
            let resolution: StaticFileResolution
            if file.hasPrefix("/") {
                if let info = StaticFileResolver.fileStatus(file), info.st_mode & S_IFMT == S_IFREG {
                    resolution = .file(path: file, size: Int(info.st_size), contentType: MIMETypes.type(forPath: file))
                } else {
                    resolution = .notFound
                }
            } else {
                resolution = resolver?.resolve("/" + file) ?? .notFound
            }
            var prepared = try Self.prepare(resolution, headOnly: headOnly, extraHeaders: response.headers)
            if case .file = resolution { prepared.status = response.status }
            return prepared
        }
    }

    private static func prepare(_ resolution: StaticFileResolution, headOnly: Bool, extraHeaders: HTTPHeaders) throws
        -> PreparedResponse
    {
        switch resolution {
        case .file(let path, let size, let contentType):
            var headers = extraHeaders
            if !headers.contains(name: "content-type") { headers.add(name: "content-type", value: contentType) }
            if headOnly {
                headers.replaceOrAdd(name: "content-length", value: String(size))
                return PreparedResponse(status: 200, headers: headers, body: .bytes(ByteBuffer()))
            }
            let handle = try NIOFileHandle(_deprecatedPath: path)
            do {
                return PreparedResponse(status: 200, headers: headers, body: .file(try FileRegion(fileHandle: handle), handle))
            } catch {
                try? handle.close()
                throw error
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

    private static func page(_ status: Int, _ extraHeaders: HTTPHeaders) -> PreparedResponse {
        var headers = extraHeaders
        headers.replaceOrAdd(name: "content-type", value: "text/plain; charset=utf-8")
        return PreparedResponse(status: status, headers: headers, body: .bytes(ByteBuffer(string: HTTPResponse.statusText(status))))
    }
}
