// A response ready for the wire: the body is bytes or an open file region.
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response whose body needs no more work before writing.
struct PreparedResponse {
    enum Body {
        case bytes(ByteBuffer)
        /// An open file; its handle (the region's) is closed once the region has been written.
        case file(FileRegion, FileOrigin)
    }

    var status: Int
    var headers: HTTPHeaders
    var body: Body

    var contentLength: Int {
        switch body {
        case .bytes(let buffer): return buffer.readableBytes
        case .file(let region, _): return region.readableBytes
        }
    }

    /// Closes the file of a response that will not be written after all.
    func discard() {
        if case .file(let region, _) = body { try? region.fileHandle.close() }
    }
}

extension PreparedResponse: @unchecked Sendable {}

/// The file a file body was opened from, to open it again (`FileBodyCopier`). A reference, so
/// the body enum, which every response carries (bytes too), stays as small as it was: with the
/// file inline each Lua hello cost about 260 instructions more (Tests/bench/instructions.sh).
final class FileOrigin: Sendable {
    let file: StaticFile

    init(_ file: StaticFile) {
        self.file = file
    }
}
