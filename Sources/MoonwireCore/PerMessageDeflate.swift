// permessage-deflate (RFC 7692): the negotiation of its parameters in the handshake, and the
// per-connection compressor and decompressor, on the system zlib (raw deflate streams).
import CZlib
import NIOCore

/// The agreed parameters of permessage-deflate for one connection.
struct PerMessageDeflateParameters: Equatable {
    var serverNoContextTakeover = false
    var clientNoContextTakeover = false
    /// LZ77 window of what the server sends (8...15; zlib's raw deflate needs 9 or more).
    var serverMaxWindowBits = 15
    /// Window the client compresses with, hence the one the server inflates with.
    var clientMaxWindowBits = 15
    /// Whether the response names client_max_window_bits (only if the client offered it).
    var echoClientMaxWindowBits = false

    /// The Sec-WebSocket-Extensions value of the handshake response.
    var responseHeader: String {
        var parts = ["permessage-deflate"]
        if serverNoContextTakeover { parts.append("server_no_context_takeover") }
        if clientNoContextTakeover { parts.append("client_no_context_takeover") }
        if serverMaxWindowBits != 15 { parts.append("server_max_window_bits=\(serverMaxWindowBits)") }
        if echoClientMaxWindowBits { parts.append("client_max_window_bits=\(clientMaxWindowBits)") }
        return parts.joined(separator: "; ")
    }

    /// The first acceptable permessage-deflate offer among the request's extension headers,
    /// or nil (then the connection goes without compression).
    static func negotiate(_ offers: [String]) -> PerMessageDeflateParameters? {
        for offer in offers.flatMap({ $0.split(separator: ",") }) {
            let items = offer.split(separator: ";").map { $0.trimmingWhitespace }
            guard items.first?.lowercased() == "permessage-deflate" else { continue }
            if let accepted = accept(items.dropFirst()) { return accepted }
        }
        return nil
    }

    private static func accept(_ parameters: ArraySlice<String>) -> PerMessageDeflateParameters? {
        var result = PerMessageDeflateParameters()
        var seen: Set<String> = []
        for parameter in parameters {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace }
            let name = pair[0].lowercased()
            guard seen.insert(name).inserted else { return nil }
            let value = pair.count == 2 ? pair[1].trimmingCharacters(of: "\"") : nil
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                result.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                result.clientNoContextTakeover = true
            case "server_max_window_bits":
                // zlib cannot deflate with a 256-byte window: decline, as RFC 7692 allows.
                guard let value, let bits = Int(value), (9...15).contains(bits) else { return nil }
                result.serverMaxWindowBits = bits
            case "client_max_window_bits":
                if let value {
                    guard let bits = Int(value), (8...15).contains(bits) else { return nil }
                    result.clientMaxWindowBits = max(bits, 9)
                    result.echoClientMaxWindowBits = true
                }
            default:
                return nil
            }
        }
        return result
    }
}

extension String {
    fileprivate func trimmingCharacters(of character: Character) -> String {
        var text = Substring(self)
        while text.first == character { text = text.dropFirst() }
        while text.last == character { text = text.dropLast() }
        return String(text)
    }
}

/// Compresses outgoing and inflates incoming messages of one connection. Its zlib streams are
/// made on first use, not with the connection: a deflate stream takes about 260 KiB (of which
/// zlib clears 64 KiB at once) and an inflate stream 7 KiB plus a 32 KiB window, so an idle
/// connection that agreed on compression holds none of that. A direction without context
/// takeover frees its stream after each message (its next message starts from nothing
/// anyway), so only a connection that keeps a context keeps a stream between messages.
final class PerMessageDeflate {
    let parameters: PerMessageDeflateParameters
    /// Made on first use (see the type's comment); nil between messages without context takeover.
    private var deflater: UnsafeMutablePointer<z_stream>?
    private var inflater: UnsafeMutablePointer<z_stream>?
    private static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    /// Nil for window sizes zlib cannot work with (negotiation offers none).
    init?(_ parameters: PerMessageDeflateParameters) {
        guard (9...15).contains(parameters.serverMaxWindowBits), (8...15).contains(parameters.clientMaxWindowBits) else { return nil }
        self.parameters = parameters
    }

    deinit {
        endDeflater()
        endInflater()
    }

    /// Whether a zlib stream is held now, for each direction (tests measure the laziness).
    var holdsStreams: (deflate: Bool, inflate: Bool) { (deflater != nil, inflater != nil) }

    private func startDeflater() -> UnsafeMutablePointer<z_stream> {
        if let deflater { return deflater }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // Only a failed allocation fails with these parameters; Swift stops on those as well.
        precondition(mw_deflateInit2(stream, 6, -Int32(parameters.serverMaxWindowBits), 8) == Z_OK, "zlib: out of memory")
        deflater = stream
        return stream
    }

    private func startInflater() -> UnsafeMutablePointer<z_stream>? {
        if let inflater { return inflater }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard mw_inflateInit2(stream, -Int32(max(parameters.clientMaxWindowBits, 9))) == Z_OK else {
            stream.deallocate()
            return nil
        }
        inflater = stream
        return stream
    }

    private func endDeflater() {
        guard let deflater else { return }
        deflateEnd(deflater)
        deflater.deallocate()
        self.deflater = nil
    }

    private func endInflater() {
        guard let inflater else { return }
        inflateEnd(inflater)
        inflater.deallocate()
        self.inflater = nil
    }

    /// The compressed payload of a whole message (RFC 7692 section 7.2.1).
    func compress(_ message: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        let deflater = startDeflater()
        var output = allocator.buffer(capacity: message.readableBytes / 2 + 64)
        message.withUnsafeReadableBytes { input in
            deflater.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            deflater.pointee.avail_in = uInt(input.count)
            repeat {
                output.reserveCapacity(minimumWritableBytes: 4096)
                _ = output.writeWithUnsafeMutableBytes(minimumWritableBytes: 4096) { target in
                    deflater.pointee.next_out = target.bindMemory(to: Bytef.self).baseAddress
                    deflater.pointee.avail_out = uInt(target.count)
                    deflate(deflater, Z_SYNC_FLUSH)
                    return target.count - Int(deflater.pointee.avail_out)
                }
            } while deflater.pointee.avail_out == 0
        }
        if output.readableBytes >= 4 { output.moveWriterIndex(to: output.writerIndex - 4) }
        if parameters.serverNoContextTakeover { endDeflater() }
        return output
    }

    /// Why inflating stopped short.
    enum InflateFailure {
        case corrupt
        /// The output grew beyond the limit.
        case tooBig
        /// `admit` refused the output's growth.
        case refused
    }

    /// Inflates a piece of a message's payload (unmasked) into `output`; the message's last
    /// piece (`final`) also inflates the tail the sender stripped. Stops when the output grows
    /// beyond `limit` bytes, and asks `admit` before the output holds more memory (its new
    /// capacity), so a small compressed input cannot take more than the server allows. Nil
    /// when all went in.
    func inflate(_ payload: ByteBuffer, final: Bool, into output: inout ByteBuffer, limit: Int, admit: (_ capacity: Int) -> Bool)
        -> InflateFailure?
    {
        // Out of memory for the stream: refused, as more memory for the output would be.
        guard let inflater = startInflater() else { return .refused }
        if let failure = payload.withUnsafeReadableBytes({ feed($0, inflater, into: &output, limit: limit, admit: admit) }) {
            return failure
        }
        guard final else { return nil }
        if let failure = Self.tail.withUnsafeBytes({ feed($0, inflater, into: &output, limit: limit, admit: admit) }) {
            return failure
        }
        if parameters.clientNoContextTakeover { endInflater() }
        return nil
    }

    private func feed(
        _ input: UnsafeRawBufferPointer, _ inflater: UnsafeMutablePointer<z_stream>, into output: inout ByteBuffer, limit: Int,
        admit: (Int) -> Bool
    ) -> InflateFailure? {
        guard input.count > 0 else { return nil }
        inflater.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        inflater.pointee.avail_in = uInt(input.count)
        var ok = true
        repeat {
            if output.writableBytes < 16384 {
                let capacity = output.capacity
                output.reserveCapacity(minimumWritableBytes: 16384)
                if output.capacity != capacity, !admit(output.capacity) { return .refused }
            }
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { target in
                inflater.pointee.next_out = target.bindMemory(to: Bytef.self).baseAddress
                inflater.pointee.avail_out = uInt(target.count)
                let status = CZlib.inflate(inflater, Z_SYNC_FLUSH)
                if status != Z_OK && status != Z_BUF_ERROR && status != Z_STREAM_END { ok = false }
                return target.count - Int(inflater.pointee.avail_out)
            }
            guard ok else { return .corrupt }
            if output.readableBytes > limit { return .tooBig }
        } while inflater.pointee.avail_out == 0
        return nil
    }
}
