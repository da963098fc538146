import Foundation

// Element-wise activations (`y` may alias `x`).

/// GELU, tanh approximation (activations.py:65-90, torch `gelu(approximate="tanh")`):
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), evaluated as x·σ(2u) = x / (1 + e^(−2u)),
/// which is the same function and keeps relative precision in both tails.
// x: [count] -> y: [count]
public func geluTanh(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    parallelFor(count, grain: 1 << 14) { range in geluTanhSpan(y, x, range) }
}

/// `geluTanh` over `range` on the calling thread (each element on its own: the same bits wherever it falls).
// x: [range] -> y: [range]
@inline(__always)
func geluTanhSpan(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ range: Range<Int>) {
    mapVectors(y, x, range) { v in
        let u = 0.797_884_560_802_865_4 * (v + 0.044_715 * (v * v * v))
        return v / (1 + vexp(-2 * u))
    }
}

/// SiLU (x·σ(x) = x / (1 + e^(−x))).
// x: [count] -> y: [count]
public func silu(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    parallelFor(count, grain: 1 << 14) { range in siluSpan(y, x, range) }
}

/// `silu` over `range` on the calling thread (each element on its own: the same bits wherever it falls).
// x: [range] -> y: [range]
@inline(__always)
func siluSpan(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ range: Range<Int>) {
    mapVectors(y, x, range) { v in v / (1 + vexp(-v)) }
}

/// ReLU (`max(x, 0)`): the feature map of linear attention and DC-AE's `relu` activations.
// x: [count] -> y: [count]
public func relu(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    parallelFor(count, grain: 1 << 15) { range in
        for i in range { y[i] = x[i] > 0 ? x[i] : 0 }
    }
}

/// GLU with SiLU over channel halves (GLUMBConv, sana_transformer.py:70-71):
/// `hidden, gate = chunk(x, 2, dim=1)`, `y = hidden · SiLU(gate)`.
// x: [B, 2C, S] -> y: [B, C, S]
public func gluSiLU(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, channels c: Int, spatial s: Int) {
    parallelFor(batch * c, grain: max(1, 16_384 / max(s, 1))) { range in
        for bc in range {
            let b = bc / c, ch = bc % c
            let hidden = x + (b * 2 * c + ch) * s, gate = x + (b * 2 * c + c + ch) * s
            let yr = y + bc * s
            for j in 0..<s {
                let g = gate[j]
                yr[j] = hidden[j] * (g / (1 + exp(-g)))
            }
        }
    }
}
