// Float image tensor to 8-bit RGB, exactly as diffusers does it:
// pipeline_dit.py:236 `samples = (samples / 2 + 0.5).clamp(0, 1)` (float32), then
// image_processor / pil_utils.py:41 `(images * 255).round().astype("uint8")` (numpy, float32,
// round half to even).

public enum ImageConversion {
    /// Converts one image given as CHW floats in [-1, 1] (3 channels, `width * height` each)
    /// to RGB8 bytes in HWC order. All arithmetic is Float32 like PyTorch's: x/2 + 0.5, clamp
    /// to [0, 1], times 255, round half to even. NaN becomes 0.
    public static func rgb8(fromCHW values: [Float], width: Int, height: Int) throws -> [UInt8] {
        let plane = width * height
        guard width >= 0, height >= 0, values.count == 3 * plane else {
            throw PNGError(.invalidArgument,
                "a 3-channel \(width)x\(height) CHW image needs \(3 * plane) floats, got \(values.count)")
        }
        var out = [UInt8](repeating: 0, count: 3 * plane)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<3 {
                    for i in 0..<plane {
                        dst[i * 3 + c] = byte(src[c * plane + i])
                    }
                }
            }
        }
        return out
    }

    /// One value: Float32(x / 2 + 0.5) clamped to [0, 1], times 255, rounded half to even.
    @inline(__always)
    public static func byte(_ x: Float) -> UInt8 {
        var v = x / 2 + 0.5
        if v.isNaN { return 0 }
        v = min(max(v, 0), 1)
        return UInt8((v * 255).rounded(.toNearestOrEven))
    }
}
