// One uploaded file being written, off the event loop: opening, each write and the close run
// on NIO's thread pool and complete on the loop. A plain descriptor rather than NIO's
// NonBlockingFileIO, whose openFile and NIOFileHandle are deprecated in the NIO we build
// with (warnings are errors here); the file is opened O_NOFOLLOW (a link planted in the upload
// folder is not followed) and 0600.
import Foundation
import NIOCore
import NIOPosix

/// An open upload file; its methods are called on one loop, one at a time.
final class UploadFile: @unchecked Sendable {
    let path: String
    private(set) var size = 0
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    private static var pool: NIOThreadPool { .singleton }

    /// Creates (or truncates) the file at `path`, and its folders.
    static func create(_ path: String, on loop: EventLoop) -> EventLoopFuture<UploadFile> {
        pool.runIfActive(eventLoop: loop) {
            let folder = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw UploadFileError(path: path, errno: errno) }
            return UploadFile(path: path, descriptor: descriptor)
        }
    }

    /// Appends `buffer`.
    func write(_ buffer: ByteBuffer, on loop: EventLoop) -> EventLoopFuture<Void> {
        size += buffer.readableBytes
        let descriptor = descriptor
        let path = path
        return Self.pool.runIfActive(eventLoop: loop) {
            try buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { throw UploadFileError(path: path, errno: errno) }
                    offset += written
                }
            }
        }
    }

    /// Closes the file; `remove` deletes it too (an upload that broke off or was refused).
    func close(remove: Bool, on loop: EventLoop) -> EventLoopFuture<Void> {
        let descriptor = descriptor
        let path = path
        return Self.pool.runIfActive(eventLoop: loop) {
            _ = Foundation.close(descriptor)
            if remove { unlink(path) }
        }
    }

    /// Deletes files the request leaves behind, off the loop.
    static func remove(_ paths: [String]) {
        guard !paths.isEmpty else { return }
        pool.submit { _ in
            for path in paths { unlink(path) }
        }
    }
}

struct UploadFileError: Error, CustomStringConvertible {
    let path: String
    let errno: Int32
    var description: String { "\(path): \(String(cString: strerror(errno)))" }
}
