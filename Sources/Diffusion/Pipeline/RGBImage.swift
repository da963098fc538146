// Float image → 8-bit RGB exactly as diffusers: pipeline_dit.py:236 `(samples / 2 + 0.5).clamp(0, 1)` then
// utils/pil_utils.py:41 `(images * 255).round().astype("uint8")` (numpy round = half to even), all float32.

/// An 8-bit RGB image, rows top to bottom, pixels interleaved R,G,B.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// width · height · 3 bytes.
    public let pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

public enum ImageConversion {
    /// `(x / 2 + 0.5).clamp(0, 1)` elementwise: a decoder output in [-1, 1] to [0, 1].
    public static func unitRange(_ x: [Float]) -> [Float] {
        x.map { v in min(max(v / 2 + 0.5, 0), 1) }
    }

    /// [3, H, W] floats in [0, 1] → RGB8 with numpy's round-half-even of x·255.
    public static func rgb8(chw: [Float], height: Int, width: Int) -> RGBImage {
        let plane = height * width
        var out = [UInt8](repeating: 0, count: plane * 3)
        for c in 0..<3 {
            for p in 0..<plane {
                let v = (chw[c * plane + p] * 255).rounded(.toNearestOrEven)
                out[p * 3 + c] = v.isNaN ? 0 : UInt8(min(max(v, 0), 255))   // NaN (a diverged sample) → 0
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
