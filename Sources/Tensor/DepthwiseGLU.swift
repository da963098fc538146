// GLUMBConv's middle on channels-last maps (Sana's Mix-FFN run on token rows): the depthwise 3×3 convolution and
// the GLU with SiLU fused in one pass, vectorised across channels (a pixel's channels are contiguous).

/// Reorders a depthwise 3×3 weight `[C, 1, 3, 3]` to tap-major `[9, C]` (tap `ky·3 + kx`), the layout
/// `depthwise3x3GLUChannelsLast` reads: one tap of every channel is one contiguous row.
// w: [C, 1, 3, 3] -> taps: [9, C]
public func depthwiseTapsChannelsLast(_ taps: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, channels c: Int) {
    for ch in 0..<c {
        for t in 0..<9 { taps[t * c + ch] = w[ch * 9 + t] }
    }
}

/// `conv_depth` then `hidden, gate = chunk(2, dim=1)`, `hidden · SiLU(gate)` (GLUMBConv, sana_transformer.py:66-71;
/// Conv2d(2C, 2C, 3, padding=1, groups=2C) with bias) on a channels-last map: the first C channels of a pixel are
/// the hidden half, the last C the gate. Per output value: `acc = bias`, then `acc += w·x` over the taps inside
/// the map in (ky, kx) order (zero padding), as the channel-major `depthwiseConv2d` sums. SiLU uses `vexp`.
/// Each pixel is computed alone: the result does not depend on the batch or on the thread count.
// x: [B, H, W, 2C], taps: [9, 2C] (depthwiseTapsChannelsLast), bias: [2C] -> y: [B, H, W, C]
public func depthwise3x3GLUChannelsLast(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, taps: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    batch: Int, height h: Int, width w: Int, channels c: Int
) {
    let c2 = 2 * c, pixels = batch * h * w
    guard pixels > 0, c > 0 else { return }
    parallelFor(pixels, grain: max(1, 16_384 / (9 * c2))) { range in
        for pixel in range {
            let b = pixel / (h * w), i = (pixel / w) % h, j = pixel % w
            // The taps inside the map: ky in ky0..<ky1, kx in kx0..<kx1.
            let ky0 = i == 0 ? 1 : 0, ky1 = i == h - 1 ? 2 : 3, kx0 = j == 0 ? 1 : 0, kx1 = j == w - 1 ? 2 : 3
            let out = y + pixel * c
            var ch = 0
            while ch + 8 <= c {
                var hidden = load8(bias + ch), gate = load8(bias + c + ch)
                for ky in ky0..<ky1 {
                    for kx in kx0..<kx1 {
                        let tap = taps + (ky * 3 + kx) * c2, src = x + ((b * h + i + ky - 1) * w + j + kx - 1) * c2
                        hidden += load8(tap + ch) * load8(src + ch)
                        gate += load8(tap + c + ch) * load8(src + c + ch)
                    }
                }
                UnsafeMutableRawPointer(out + ch).storeBytes(of: hidden * (gate / (1 + vexp(-gate))), as: FloatVector.self)
                ch += 8
            }
            while ch < c {
                var hidden = bias[ch], gate = bias[c + ch]
                for ky in ky0..<ky1 {
                    for kx in kx0..<kx1 {
                        let tap = taps + (ky * 3 + kx) * c2, src = x + ((b * h + i + ky - 1) * w + j + kx - 1) * c2
                        hidden += tap[ch] * src[ch]
                        gate += tap[c + ch] * src[c + ch]
                    }
                }
                var g = FloatVector(repeating: 0)
                g[0] = gate
                out[ch] = hidden * (gate / (1 + vexp(-g)[0]))
                ch += 1
            }
        }
    }
}

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> FloatVector { UnsafeRawPointer(p).loadUnaligned(as: FloatVector.self) }
