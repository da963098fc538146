import Foundation
import Testing
@testable import Imaging

/// A deterministic test pattern: every pixel differs from its neighbours.
func pattern(width: Int, height: Int) -> [UInt8] {
    var p: [UInt8] = []
    for y in 0..<height {
        for x in 0..<width {
            p += [UInt8((x * 7 + y) & 0xFF), UInt8((y * 13) & 0xFF), UInt8((x ^ y) & 0xFF)]
        }
    }
    return p
}

@Test func encodeThenDecodeGivesBackEveryPixel() throws {
    let pixels = pattern(width: 37, height: 21)
    let png = try PNG.encodeRGB(width: 37, height: 21, pixels: pixels)
    #expect(Array(png.prefix(8)) == PNGChunks.signature)
    let image = try PNG.decode(png)
    #expect(image.width == 37)
    #expect(image.height == 21)
    #expect(image.pixels == pixels)
}

@Test func textChunksSitRightAfterIHDRAndDecodeBack() throws {
    let parameters = "red circle\nSteps: 20, Sampler: euler, Seed: 18446744073709551615"
    let png = try PNG.encodeRGB(width: 4, height: 3, pixels: pattern(width: 4, height: 3),
                                text: [("parameters", parameters), ("Software", "darkroom")])
    let chunks = try PNGChunks.walk(png)
    #expect(chunks.map(\.type).prefix(3) == ["IHDR", "tEXt", "tEXt"])
    #expect(chunks.allSatisfy { $0.crcMatches })
    let image = try PNG.decode(png)
    #expect(image.text("parameters") == parameters)
    #expect(image.text("Software") == "darkroom")
    #expect(image.text.count == 2)
}

@Test func nonLatin1TextIsWrittenAsITXtAndSurvives() throws {
    let prompt = "красный круг ☀︎"
    let png = try PNG.encodeRGB(width: 2, height: 2, pixels: pattern(width: 2, height: 2),
                                text: [("parameters", prompt)])
    #expect(try PNGChunks.walk(png)[1].type == "iTXt")
    #expect(try PNG.decode(png).text("parameters") == prompt)
}

@Test func crcMatchesTheKnownCheckValue() {
    // The CRC-32 check value of "123456789" (ISO-HDLC / PNG / zlib).
    #expect(PNGChunks.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    // IEND's CRC, fixed by the PNG specification.
    #expect(PNGChunks.crc32(Array("IEND".utf8)) == 0xAE42_6082)
}

@Test func libpngErrorIsThrownWithLibpngsMessage() {
    do {
        _ = try PNG.encodeRGB(width: 0, height: 5, pixels: [])
        Issue.record("width 0 was accepted")
    } catch let error as PNGError {
        #expect(error.code == .libpng)
        #expect(error.message.contains("IHDR"), "libpng's message: \(error.message)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test func pixelCountMismatchIsRejectedBeforeLibpng() {
    #expect(throws: PNGError.self) { try PNG.encodeRGB(width: 2, height: 2, pixels: [1, 2, 3]) }
}

@Test func invalidTextKeywordIsRejected() {
    #expect(throws: PNGError.self) {
        try PNG.encodeRGB(width: 1, height: 1, pixels: [0, 0, 0], text: [(" lead", "x")])
    }
    #expect(throws: PNGError.self) {
        try PNG.encodeRGB(width: 1, height: 1, pixels: [0, 0, 0], text: [("", "x")])
    }
}

@Test func decodingGarbageOrATruncatedPNGThrows() throws {
    #expect(throws: PNGError.self) { try PNG.decode(Array("not a png".utf8)) }
    let png = try PNG.encodeRGB(width: 8, height: 8, pixels: pattern(width: 8, height: 8))
    #expect(throws: PNGError.self) { try PNG.decode(Array(png.prefix(png.count - 20))) }
    // A corrupted IDAT: libpng itself reports the failure.
    var bad = png
    let idat = try #require(try PNGChunks.walk(png).first { $0.type == "IDAT" })
    bad[idat.data.lowerBound + 2] ^= 0xFF
    do {
        _ = try PNG.decode(bad)
        Issue.record("a corrupted IDAT decoded")
    } catch let error as PNGError {
        #expect(error.code == .libpng)
        #expect(!error.message.isEmpty)
    }
}

@Test func fileCommandRecognisesOurPNG() throws {
    let png = try PNG.encodeRGB(width: 320, height: 200, pixels: pattern(width: 320, height: 200),
                                text: [("parameters", "x")])
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("darkroom-imaging-\(getpid()).png")
    try Data(png).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/file")
    process.arguments = ["-b", url.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    process.waitUntilExit()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(output.hasPrefix("PNG image data, 320 x 200, 8-bit/color RGB, non-interlaced"), "file said: \(output)")
}
