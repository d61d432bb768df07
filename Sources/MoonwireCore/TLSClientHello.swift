// Reads the ALPN protocols a client offers from its TLS ClientHello (RFC 8446 section 4.1.2,
// RFC 7301), so a script can choose among them before the handshake answers.
import NIOCore

/// The parts of a ClientHello the server decides on before TLS starts.
enum TLSClientHello {
    /// The offered protocols; `.decided([])` when there is no ALPN extension or the bytes are
    /// not a ClientHello (the TLS handler then answers them), `.needMore` until the first
    /// record is complete.
    static func offeredProtocols(_ bytes: ByteBuffer) -> FirstBytesVerdict<[String]> {
        var buffer = bytes
        guard let contentType = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return .needMore }
        guard contentType == 0x16 else { return .decided([]) }  // not a handshake record
        guard let header = buffer.readBytes(length: 5) else { return .needMore }
        let recordLength = Int(header[3]) << 8 | Int(header[4])
        guard var record = buffer.readSlice(length: recordLength) else { return .needMore }
        return .decided(alpn(inHandshake: &record) ?? [])
    }

    private static func alpn(inHandshake record: inout ByteBuffer) -> [String]? {
        guard record.readInteger(as: UInt8.self) == 1,  // client_hello
            record.readBytes(length: 3) != nil,  // length; a hello split over records ends early, harmlessly
            record.readSlice(length: 2 + 32) != nil,  // legacy_version, random
            let sessionLength = record.readInteger(as: UInt8.self), record.readSlice(length: Int(sessionLength)) != nil,
            let suitesLength = record.readInteger(as: UInt16.self), record.readSlice(length: Int(suitesLength)) != nil,
            let compressionLength = record.readInteger(as: UInt8.self),
            record.readSlice(length: Int(compressionLength)) != nil,
            let extensionsLength = record.readInteger(as: UInt16.self),
            var extensions = record.readSlice(length: min(Int(extensionsLength), record.readableBytes))
        else { return nil }
        while let type = extensions.readInteger(as: UInt16.self), let length = extensions.readInteger(as: UInt16.self),
            var body = extensions.readSlice(length: Int(length))
        {
            guard type == 16 else { continue }  // application_layer_protocol_negotiation
            guard let listLength = body.readInteger(as: UInt16.self), var list = body.readSlice(length: Int(listLength)) else {
                return nil
            }
            var protocols: [String] = []
            while let nameLength = list.readInteger(as: UInt8.self), let name = list.readString(length: Int(nameLength)) {
                protocols.append(name)
            }
            return protocols
        }
        return nil
    }
}
