import Testing
@testable import Imaging

@Test func conversionMatchesDiffusersOnEdgeValues() throws {
    // -1 -> 0, 1 -> 255, out of range clamps, NaN -> 0.
    #expect(ImageConversion.byte(-1) == 0)
    #expect(ImageConversion.byte(1) == 255)
    #expect(ImageConversion.byte(-7) == 0)
    #expect(ImageConversion.byte(3.5) == 255)
    #expect(ImageConversion.byte(.nan) == 0)
    #expect(ImageConversion.byte(0) == 128)  // 0.5 * 255 = 127.5, half to even -> 128
}

@Test func conversionRoundsToNearestWithTiesToEven() {
    // For many inputs, the byte must be within 0.5 of the Float32 product (x/2+0.5)*255, and on
    // an exact tie (x = 0 gives 127.5, for one) it must be even, as numpy's round() does.
    var ties = 0
    for i in -1000...1000 {
        let x = Float(i) / 1000
        let product = (x / 2 + 0.5) * 255
        let b = ImageConversion.byte(x)
        let distance = abs(product - Float(b))
        #expect(distance <= 0.5, "x=\(x) product=\(product) byte=\(b)")
        if distance == 0.5 {
            ties += 1
            #expect(b % 2 == 0, "tie at x=\(x) product=\(product) went to odd \(b)")
        }
    }
    #expect(ties > 0)
}

@Test func chwIsInterleavedIntoRGBRows() throws {
    // 2x1 image: R plane [-1, 1], G plane [1, -1], B plane [0, 0].
    let out = try ImageConversion.rgb8(fromCHW: [-1, 1, 1, -1, 0, 0], width: 2, height: 1)
    #expect(out == [0, 255, 128, 255, 0, 128])
    #expect(throws: PNGError.self) { try ImageConversion.rgb8(fromCHW: [0, 0], width: 2, height: 1) }
}
