// A response ready for the wire: the body is bytes or an open file region.
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response whose body needs no more work before writing.
struct PreparedResponse {
    enum Body {
        case bytes(ByteBuffer)
        /// An open file; the handle is closed once the region has been written. The file is
        /// kept to open it again (see `FileBodyCopier`).
        case file(FileRegion, NIOFileHandle, StaticFile)
    }

    var status: Int
    var headers: HTTPHeaders
    var body: Body

    var contentLength: Int {
        switch body {
        case .bytes(let buffer): return buffer.readableBytes
        case .file(let region, _, _): return region.readableBytes
        }
    }

    /// Closes the file of a response that will not be written after all.
    func discard() {
        if case .file(_, let handle, _) = body { try? handle.close() }
    }
}

extension PreparedResponse: @unchecked Sendable {}
