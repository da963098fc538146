// PNG chunk level: CRC-32, the chunk walk, and tEXt / iTXt chunks
// (PNG specification, 3rd ed., §5.3 chunk layout, §5.5 CRC, §11.3.3 tEXt/iTXt).

enum PNGChunks {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// CRC-32 as PNG uses it: reflected polynomial 0xEDB88320, initial and final xor 0xFFFFFFFF.
    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    struct Chunk {
        var type: String
        /// Offset of the chunk's length field in the stream.
        var offset: Int
        /// Range of the chunk's data in the stream.
        var data: Range<Int>
        var crcMatches: Bool
    }

    /// Walks every chunk of a PNG stream, up to and including IEND.
    static func walk(_ bytes: [UInt8]) throws(PNGError) -> [Chunk] {
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else {
            throw PNGError(.malformed, "not a PNG stream (the 8-byte PNG signature is missing)")
        }
        var chunks: [Chunk] = []
        var at = 8
        while true {
            guard at + 12 <= bytes.count else {
                throw PNGError(.malformed, "PNG stream ends inside a chunk header at byte \(at) (no IEND)")
            }
            let length = Int(readUInt32(bytes, at))
            guard length <= 0x7FFF_FFFF, at + 12 + length <= bytes.count else {
                throw PNGError(.malformed, "chunk at byte \(at) claims \(length) data bytes, past the end of the stream")
            }
            let typeBytes = bytes[(at + 4)..<(at + 8)]
            let type = String(decoding: typeBytes, as: UTF8.self)
            let data = (at + 8)..<(at + 8 + length)
            let stored = readUInt32(bytes, at + 8 + length)
            let crc = crc32(bytes[(at + 4)..<(at + 8 + length)])
            chunks.append(Chunk(type: type, offset: at, data: data, crcMatches: stored == crc))
            at += 12 + length
            if type == "IEND" { return chunks }
        }
    }

    static func readUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    static func appendUInt32(_ value: UInt32, to out: inout [UInt8]) {
        out += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// One complete chunk: length, type, data, CRC over type and data.
    static func chunk(type: String, data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12 + data.count)
        appendUInt32(UInt32(data.count), to: &out)
        let body = Array(type.utf8) + data
        out += body
        appendUInt32(crc32(body), to: &out)
        return out
    }

    /// A tEXt chunk when the text is Latin-1, else an uncompressed iTXt chunk (UTF-8), so any
    /// prompt survives. Keywords: 1-79 printable Latin-1 characters, no leading, trailing or
    /// doubled spaces (§11.3.3.2).
    static func textChunk(keyword: String, text: String) throws(PNGError) -> [UInt8] {
        guard let key = latin1(keyword), (1...79).contains(key.count),
              key.allSatisfy({ ($0 >= 32 && $0 <= 126) || $0 >= 161 }),
              key.first != 32, key.last != 32, !keyword.contains("  ")
        else {
            throw PNGError(.invalidArgument,
                "PNG text keyword \"\(keyword)\" is invalid: it must be 1 to 79 printable Latin-1 characters without leading, trailing or double spaces")
        }
        if let value = latin1(text), !value.contains(0) {
            return chunk(type: "tEXt", data: key + [0] + value)
        }
        // iTXt: keyword, 0, compression flag 0, method 0, empty language tag, 0, empty translated keyword, 0, text.
        return chunk(type: "iTXt", data: key + [0, 0, 0, 0, 0] + Array(text.utf8))
    }

    /// Reads a tEXt or uncompressed iTXt chunk's keyword and text; nil for anything else.
    static func readText(_ chunk: Chunk, in bytes: [UInt8]) -> (String, String)? {
        let data = Array(bytes[chunk.data])
        guard let nul = data.firstIndex(of: 0) else { return nil }
        let keyword = String(data[0..<nul].map { Character(Unicode.Scalar($0)) })
        switch chunk.type {
        case "tEXt":
            return (keyword, String(data[(nul + 1)...].map { Character(Unicode.Scalar($0)) }))
        case "iTXt":
            // compression flag, method, language\0, translated keyword\0, text
            guard data.count >= nul + 3, data[nul + 1] == 0 else { return nil }
            var at = nul + 3
            guard let langEnd = data[at...].firstIndex(of: 0) else { return nil }
            at = langEnd + 1
            guard let transEnd = data[at...].firstIndex(of: 0) else { return nil }
            return (keyword, String(decoding: data[(transEnd + 1)...], as: UTF8.self))
        default:
            return nil
        }
    }

    private static func latin1(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        for scalar in s.unicodeScalars {
            guard scalar.value <= 0xFF else { return nil }
            out.append(UInt8(scalar.value))
        }
        return out
    }
}
