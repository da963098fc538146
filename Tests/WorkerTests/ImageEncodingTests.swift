// The image event's PNG, made by the worker (moved here from JobsTests when Jobs stopped needing libpng).
import Imaging
import Jobs
import TestSupport
import Testing
import Worker

@Test func imageEventIsThePNGWithIntegerHeadersAndDecimalSeed() throws {
    let job = try Fixtures.decode("{\"prompt\":\"green triangle\",\"width\":32,\"height\":32,\"seed\":18446744073709551615}")
    let pixels = [UInt8](repeating: 200, count: 32 * 32 * 3)
    let e = try ImageEvent(job: job, index: 0, seed: UInt64.max, rgb: pixels).encoded()
    #expect(e.contentType == "image/png")
    #expect(e.headers == [
        Header("darkroom-event", .string("image")), Header("darkroom-job", .string("msg-1")),
        Header("darkroom-index", .int(0)), Header("darkroom-seed", .string("18446744073709551615")),
        Header("darkroom-width", .int(32)), Header("darkroom-height", .int(32)),
    ])
    let png = try PNG.decode(e.body)
    #expect(png.width == 32 && png.height == 32 && png.pixels == pixels)
    #expect(png.text("parameters")?.hasPrefix("green triangle\nSteps: 20, Sampler: euler") == true)
    #expect(png.text("parameters")?.contains("Seed: 18446744073709551615") == true)
}
