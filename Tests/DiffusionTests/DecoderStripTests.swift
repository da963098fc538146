// The decoders' strip-by-strip convolutions (ConvScratch.same(strips:), upsampledSame) and the DC-AE blocks built
// on them (ResBlock adding its residual into its input, the up block's shortcut added in one pass) against the
// whole-map compositions they replace, bit for bit: at sizes where oneDNN runs the convolution in row strips (CPUs
// with AVX-512; the test checks that there are several) and at sizes below them (the whole-map path).
import Foundation
import Tensor
import Testing
import Weights
@testable import Diffusion

/// Random weights held in memory, by name (deterministic, uniform in ±1/√fan-in).
final class RandomWeights: WeightStore, @unchecked Sendable {
    private var tensors: [String: (shape: [Int], buffer: FloatBuffer)] = [:]

    init(_ shapes: [String: [Int]], seed: UInt64) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for (name, shape) in shapes.sorted(by: { $0.key < $1.key }) {
            let n = shape.reduce(1, *), fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            let scale = 1 / Float(fanIn).squareRoot()
            let buffer = FloatBuffer(count: n)
            for i in 0..<n {
                state ^= state >> 12; state ^= state << 25; state ^= state >> 27
                buffer.pointer[i] = (Float((state &* 0x2545_F491_4F6C_DD1D) >> 40) / Float(1 << 24) * 2 - 1) * scale
            }
            tensors[name] = (shape, buffer)
        }
    }

    func contains(_ name: String) -> Bool { tensors[name] != nil }

    func weight(_ name: String) throws -> WeightView {
        guard let t = tensors[name] else { throw ModelError(.missingWeight, name) }
        return WeightView(shape: t.shape, pointer: UnsafePointer(t.buffer.pointer), owner: t.buffer)
    }
}

@Suite struct DecoderStripTests {
    static func map(_ b: Int, _ c: Int, _ h: Int, _ w: Int, seed: UInt64) -> FeatureMap {
        let m = FeatureMap(batch: b, channels: c, height: h, width: w)
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in 0..<m.count {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            m.pointer[i] = Float((state &* 0x2545_F491_4F6C_DD1D) >> 40) / Float(1 << 24) * 4 - 2
        }
        return m
    }

    static func copy(_ x: FeatureMap) -> FeatureMap {
        let y = FeatureMap(batch: x.batch, channels: x.channels, height: x.height, width: x.width)
        y.pointer.update(from: x.pointer, count: x.count)
        return y
    }

    static func values(_ x: FeatureMap) -> [Float] { Array(UnsafeBufferPointer(start: x.pointer, count: x.count)) }

    /// Where the CPU has oneDNN's Winograd kernel, a 128-channel 256×256 convolution runs in several row strips
    /// (so the strip paths below are the ones tested there).
    static func expectStrips(_ g: Conv2dGeometry) {
        guard g.prefersDNNL != nil else { return }
        #expect((g.dnnlStripRows(.winograd) ?? g.outHeight) < g.outHeight, "\(g) runs in one piece: the test does not reach the strips")
    }

    @Test(arguments: [(256, 256), (16, 24)])
    func convolutionStripByStripAndFromAnUpsampledInputMatchTheWholeMap(height: Int, width: Int) throws {
        let store = RandomWeights(["c.weight": [128, 128, 3, 3], "c.bias": [128]], seed: 3)
        let conv = try Conv2dLayer(store, "c", in: 128, out: 128, kernel: 3)
        Self.expectStrips(conv.same(height: height, width: width))
        let scratch = ConvScratch()
        let x = Self.map(2, 128, height, width, seed: 5)
        let whole = scratch.same(conv, x)
        let assembled = FeatureMap(batch: 2, channels: 128, height: height, width: width)
        var calls = 0
        scratch.same(conv, x) { item, firstRow, rows, out in
            calls += 1
            for c in 0..<128 {
                (assembled.pointer + ((item * 128 + c) * height + firstRow) * width).update(from: out + c * rows * width, count: rows * width)
            }
        }
        #expect(calls >= 2)
        #expect(Self.values(assembled) == Self.values(whole))

        let half = Self.map(2, 128, height / 2, width / 2, seed: 7)
        let big = FeatureMap(batch: 2, channels: 128, height: height, width: width)
        upsampleNearest2x(big.pointer, half.pointer, planes: 2 * 128, height: height / 2, width: width / 2)
        #expect(Self.values(scratch.upsampledSame(conv, half)) == Self.values(scratch.same(conv, big)))
    }

    /// ResBlock: `x + norm(conv2(act(conv1(x))))`, the residual added into x strip by strip.
    @Test(arguments: [(256, 256), (16, 24)])
    func dcResBlockAddsItsResidualIntoItsInput(height: Int, width: Int) throws {
        let c = 128
        let store = RandomWeights(["r.conv1.weight": [c, c, 3, 3], "r.conv1.bias": [c], "r.conv2.weight": [c, c, 3, 3],
                                   "r.norm.weight": [c], "r.norm.bias": [c]], seed: 11)
        let block = try DCResBlock(store, "r", channels: c, normType: "rms_norm", act: "silu")
        Self.expectStrips(block.conv2.same(height: height, width: width))
        let scratch = ConvScratch()
        let x = Self.map(1, c, height, width, seed: 13)
        // the composition the block replaces
        let h = scratch.same(block.conv1, x)
        block.activation(h)
        let y = scratch.same(block.conv2, h)
        block.norm(y)
        add(y.pointer, y.pointer, x.pointer, count: y.count)

        let input = Self.copy(x)
        let out = block(input, scratch)
        #expect(out === input)
        #expect(Self.values(out) == Self.values(y))
    }

    /// Up block (interpolate, with shortcut): `conv(nearest ×2 (x)) + pixel_shuffle(repeat_interleave(x))`.
    @Test(arguments: [(128, 128), (8, 12)])
    func dcUpBlockMatchesUpsampleConvAndShuffledShortcut(height: Int, width: Int) throws {
        let (cin, cout) = (256, 128)
        let store = RandomWeights(["u.conv.weight": [cout, cin, 3, 3], "u.conv.bias": [cout]], seed: 17)
        let block = try DCUpBlock(store, "u", in: cin, out: cout, interpolate: true, shortcut: true)
        Self.expectStrips(block.conv.same(height: 2 * height, width: 2 * width))
        let scratch = ConvScratch()
        let x = Self.map(1, cin, height, width, seed: 19)
        let big = FeatureMap(batch: 1, channels: cin, height: 2 * height, width: 2 * width)
        upsampleNearest2x(big.pointer, x.pointer, planes: cin, height: height, width: width)
        let y = scratch.same(block.conv, big)
        let r = FeatureMap(batch: 1, channels: 4 * cout, height: height, width: width)
        repeatChannels(r.pointer, x.pointer, batch: 1, channels: cin, repeats: 4 * cout / cin, spatial: x.spatial)
        let s = FeatureMap(batch: 1, channels: cout, height: 2 * height, width: 2 * width)
        pixelShuffle2x(s.pointer, r.pointer, batch: 1, channels: cout, height: height, width: width)
        add(y.pointer, y.pointer, s.pointer, count: y.count)

        #expect(Self.values(block(x, scratch)) == Self.values(y))
    }
}
