// Element-wise helpers. Outputs first; every output may alias its same-shaped input.

// a: [count], b: [count] -> y: [count] = a + b
public func add(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    parallelFor(count, grain: 1 << 15) { r in
        for i in r { y[i] = a[i] + b[i] }
    }
}

/// `y += x` plane by plane where y's planes are `ldy` floats apart (rows of an NCHW map, a strip of them)
/// and x's are dense: `y[p·ldy + i] = y[p·ldy + i] + x[p·count + i]`.
// x: [P, count], y: [P, ldy] (the first count of each plane) updated in place
public func addPlanes(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, planes: Int, count: Int) {
    precondition(ldy >= count, "addPlanes: planes of \(count) do not fit \(ldy) apart")
    parallelFor(planes, grain: max(1, (1 << 15) / max(count, 1))) { r in
        for p in r {
            let yp = y + p * ldy, xp = x + p * count
            for i in 0..<count { yp[i] = yp[i] + xp[i] }
        }
    }
}

// x: [count] -> y: [count] = x · s
public func scale(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, by s: Float, count: Int) {
    parallelFor(count, grain: 1 << 15) { r in
        for i in r { y[i] = x[i] * s }
    }
}

/// Adds one row vector to every row of each batch item (e.g. the positional table to the tokens).
// y: [B, M] += v: [M]
public func addBroadcast(_ y: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, batch: Int, count m: Int) {
    parallelFor(batch * m, grain: 1 << 15) { r in
        for i in r { y[i] += v[i % m] }
    }
}

/// AdaLN modulation: `y = x·(1 + scale[b]) + shift[b]` over each item's tokens. `shift`/`scale`
/// point at row 0 of `[B, modStride]` matrices (e.g. chunks of the `[B, 6E]` modulation vector).
// x: [B, N, E], shift/scale: [B, modStride] (E used) -> y: [B, N, E]
public func modulate(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    shift: UnsafePointer<Float>, scale: UnsafePointer<Float>, modStride: Int,
    batch: Int, tokens: Int, features e: Int
) {
    parallelFor(batch * tokens, grain: max(1, 8192 / e)) { rows in
        for row in rows {
            let b = row / tokens
            let sh = shift + b * modStride, sc = scale + b * modStride
            let xr = x + row * e, yr = y + row * e
            for j in 0..<e { yr[j] = xr[j] * (1 + sc[j]) + sh[j] }
        }
    }
}

/// Gated residual of the AdaLN-zero blocks: `x[b, n, :] = gate[b, :] · f[b, n, :] + x[b, n, :]`.
// x: [B, N, E] (updated), gate: [B, gateStride] (E used), f: [B, N, E]
public func addGated(
    _ x: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, gateStride: Int, _ f: UnsafePointer<Float>,
    batch: Int, tokens: Int, features e: Int
) {
    parallelFor(batch * tokens, grain: max(1, 8192 / e)) { rows in
        for row in rows {
            let g = gate + (row / tokens) * gateStride
            let xr = x + row * e, fr = f + row * e
            for j in 0..<e { xr[j] = g[j] * fr[j] + xr[j] }
        }
    }
}

/// Element-wise product (`y` may alias `a` or `b`).
// a, b: [count] -> y: [count]
public func multiply(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    parallelFor(count, grain: 1 << 15) { range in
        for i in range { y[i] = a[i] * b[i] }
    }
}
