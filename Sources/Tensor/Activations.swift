// Element-wise activations (`y` may alias `x`).

/// GELU, tanh approximation (activations.py:65-90, torch `gelu(approximate="tanh")`):
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), evaluated as x·σ(2u) = x / (1 + e^(−2u)),
/// which is the same function and keeps relative precision in both tails.
// x: [count] -> y: [count]
public func geluTanh(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    parallelFor(count, grain: 1 << 14) { range in
        mapVectors(y, x, range) { v in
            let u = 0.797_884_560_802_865_4 * (v + 0.044_715 * (v * v * v))
            return v / (1 + vexp(-2 * u))
        }
    }
}

/// SiLU (x·σ(x) = x / (1 + e^(−x))).
// x: [count] -> y: [count]
public func silu(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    parallelFor(count, grain: 1 << 14) { range in
        mapVectors(y, x, range) { v in v / (1 + vexp(-v)) }
    }
}
