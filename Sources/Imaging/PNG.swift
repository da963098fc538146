// PNG encode and decode through libpng's simplified API (png_image_write_to_memory,
// png_image_begin_read_from_memory, png_image_finish_read: libpng 1.6 png.h §"simplified API"),
// which reports errors in png_image.message instead of longjmp, so no setjmp shim is needed.
// Text chunks are spliced in and read out by our own chunk walk (PNGChunks.swift).

import CPNG

public enum PNG {
    /// A decoded PNG: 8-bit RGB pixels, row-major, and its text chunks in file order.
    public struct Image: Sendable {
        public var width: Int
        public var height: Int
        /// width * height * 3 bytes, R G B per pixel, rows top to bottom.
        public var pixels: [UInt8]
        /// (keyword, text) of every tEXt and uncompressed iTXt chunk, in file order.
        public var text: [(String, String)]

        /// The text of the first chunk with this keyword.
        public func text(_ keyword: String) -> String? {
            text.first { $0.0 == keyword }?.1
        }
    }

    /// Encodes 8-bit RGB pixels (width * height * 3 bytes, rows top to bottom) as a PNG, with
    /// `text` as tEXt chunks (iTXt when a text is not Latin-1) placed right after IHDR.
    public static func encodeRGB(width: Int, height: Int, pixels: [UInt8],
                                 text: [(String, String)] = []) throws -> [UInt8] {
        guard width >= 0, height >= 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw PNGError(.invalidArgument, "image size \(width)x\(height) is out of range")
        }
        let (expected, overflow) = (width * 3).multipliedReportingOverflow(by: height)
        guard !overflow, pixels.count == expected else {
            throw PNGError(.invalidArgument,
                "RGB image \(width)x\(height) needs \(width)*\(height)*3 = \(expected) bytes, got \(pixels.count)")
        }
        var textChunks: [UInt8] = []
        for (keyword, value) in text { textChunks += try PNGChunks.textChunk(keyword: keyword, text: value) }

        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        defer { png_image_free(&image) }

        // A first guess that fits almost any image (stored deflate blocks of filtered rows plus
        // headers); libpng reports the size it needs when the guess is short, and we retry once.
        var capacity = height * (1 + width * 3) + (height * (1 + width * 3)) / 16_000 * 5 + 1024
        for _ in 0..<2 {
            var out = [UInt8](repeating: 0, count: capacity)
            var size = png_alloc_size_t(capacity)
            let ok = out.withUnsafeMutableBytes { dst in
                pixels.withUnsafeBytes { src in
                    png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, 0, nil)
                }
            }
            if ok != 0 {
                out.removeSubrange(Int(size)...)
                return try insertAfterIHDR(textChunks, into: out)
            }
            if Int(size) > capacity {
                capacity = Int(size)
                image.warning_or_error = 0
                continue
            }
            throw PNGError(.libpng, message(of: &image))
        }
        throw PNGError(.libpng, "libpng asked for more output memory twice")
    }

    /// Decodes any PNG libpng reads into 8-bit RGB (alpha is composited onto black, grey is
    /// expanded, 16-bit is reduced), plus its tEXt/iTXt chunks.
    public static func decode(_ bytes: [UInt8]) throws -> Image {
        let chunks = try PNGChunks.walk(bytes)
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let begun = bytes.withUnsafeBytes { src in
            png_image_begin_read_from_memory(&image, src.baseAddress, src.count)
        }
        guard begun != 0 else { throw PNGError(.libpng, message(of: &image)) }
        image.format = UInt32(PNG_FORMAT_RGB)
        let width = Int(image.width), height = Int(image.height)
        let (count, overflow) = (width * 3).multipliedReportingOverflow(by: height)
        guard !overflow, count <= 1 << 31 else {
            throw PNGError(.invalidArgument, "PNG image \(width)x\(height) is too large to decode in memory")
        }
        var pixels = [UInt8](repeating: 0, count: count)
        let finished = pixels.withUnsafeMutableBytes { dst in
            png_image_finish_read(&image, nil, dst.baseAddress, 0, nil)
        }
        guard finished != 0 else { throw PNGError(.libpng, message(of: &image)) }
        let text = chunks.filter { $0.crcMatches }.compactMap { PNGChunks.readText($0, in: bytes) }
        return Image(width: width, height: height, pixels: pixels, text: text)
    }

    private static func insertAfterIHDR(_ extra: [UInt8], into png: [UInt8]) throws -> [UInt8] {
        guard !extra.isEmpty else { return png }
        let chunks = try PNGChunks.walk(png)
        guard let ihdr = chunks.first, ihdr.type == "IHDR" else {
            throw PNGError(.malformed, "libpng's output does not start with IHDR")
        }
        let end = ihdr.data.upperBound + 4
        return Array(png[0..<end]) + extra + Array(png[end...])
    }

    /// png_image.message is a char[64], imported as a tuple.
    private static func message(of image: inout png_image) -> String {
        let text = withUnsafeBytes(of: &image.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "libpng failed without a message" : text
    }
}
