// Sends a file's bytes as buffers, for transports that cannot sendfile (TLS encrypts every
// byte; HTTP/2 frames them): 64 KiB chunks read on the thread pool, each read only once the
// channel can take more, so memory stays at one chunk. While the channel cannot take more (the
// client's HTTP/2 flow control, or a socket it does not read) the file is closed, and opened
// again when it can: a stalled client holds no file descriptor. Eight clients that opened 128
// streams each with a zero window exhausted a 1,024-descriptor limit when every stream held
// its file. A file whose size or modification time changed meanwhile is not resumed.
import NIOCore
import NIOPosix

/// Copies one file range to a channel; lives on the channel's loop.
final class FileBodyCopier {
    /// What the copier needs of the exchange that sends the body.
    struct Sink {
        /// Writes and flushes a chunk.
        var write: (ByteBuffer) -> Void
        /// Whether the channel can take more without queueing.
        var isWritable: () -> Bool
        /// Called once: the body was sent, or could not be (the file could not be read again,
        /// or the connection ended).
        var finished: (Result<Void, Error>) -> Void
    }

    private enum Phase {
        /// A read or an open is under way on the thread pool.
        case busy
        /// Waiting for the channel to become writable; the file is closed.
        case parked
        /// Waiting for nothing: about to read, open or park.
        case ready
        case done
    }

    private static let chunkSize = 64 * 1024

    private let file: StaticFile
    private var handle: NIOFileHandle?
    private var offset: Int
    private let end: Int
    private let files: StaticFileService
    private let allocator: ByteBufferAllocator
    private let eventLoop: EventLoop
    private let sink: Sink
    private var phase = Phase.ready

    /// Sends bytes `range` of `file`, open as `handle`; the copier closes the handle.
    init(
        file: StaticFile, handle: NIOFileHandle, range: Range<Int>, files: StaticFileService, allocator: ByteBufferAllocator,
        eventLoop: EventLoop, sink: Sink
    ) {
        self.file = file
        self.handle = handle
        self.offset = range.lowerBound
        self.end = range.upperBound
        self.files = files
        self.allocator = allocator
        self.eventLoop = eventLoop
        self.sink = sink
    }

    func start() {
        step()
    }

    /// The channel can take more: a parked copy goes on.
    func becameWritable() {
        if case .parked = phase { step() }
    }

    /// The connection or stream ended: nothing more is read, and the file is closed (once a
    /// read in progress returns, since the thread pool may still be using it).
    func cancel() {
        finish(.failure(ChannelError.ioOnClosedChannel))
    }

    private func step() {
        if offset >= end { return finish(.success(())) }
        guard sink.isWritable() else {
            phase = .parked
            closeFile()
            return
        }
        phase = .busy
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        guard let handle else {
            files.reopen(file, on: eventLoop).whenComplete { bound.value.reopened($0) }
            return
        }
        files.fileIO.read(
            fileHandle: handle, fromOffset: Int64(offset), byteCount: min(Self.chunkSize, end - offset), allocator: allocator,
            eventLoop: eventLoop
        ).whenComplete { bound.value.read($0) }
    }

    private func reopened(_ result: Result<NIOFileHandle, Error>) {
        switch result {
        case .success(let handle):
            self.handle = handle
            guard case .busy = phase else { return closeFile() }
            phase = .ready
            step()
        case .failure(let error):
            finish(.failure(error))
        }
    }

    private func read(_ result: Result<ByteBuffer, Error>) {
        guard case .busy = phase else { return closeFile() }
        switch result {
        case .success(let chunk) where chunk.readableBytes > 0:
            offset += chunk.readableBytes
            phase = .ready
            sink.write(chunk)
            step()
        case .success:
            finish(.failure(FileChanged(path: file.path)))
        case .failure(let error):
            finish(.failure(error))
        }
    }

    private func finish(_ result: Result<Void, Error>) {
        let wasBusy: Bool
        switch phase {
        case .done: return
        case .busy: wasBusy = true
        case .parked, .ready: wasBusy = false
        }
        phase = .done
        if !wasBusy { closeFile() }
        sink.finished(result)
    }

    private func closeFile() {
        try? handle?.close()
        handle = nil
    }
}

/// A file that changed (or shrank) while its body was being sent.
struct FileChanged: Error, CustomStringConvertible {
    var path: String

    var description: String { "\(path) changed while it was being sent" }
}
