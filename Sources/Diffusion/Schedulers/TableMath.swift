// Bit-exact reproductions of the torch / numpy routines the diffusers schedulers build their tables with
// (docs/engine.md §4.0):
//   torch.linspace float32: aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp linspace_kernel (FMA-contracted
//     by GCC on x86-64: fma(step, i, start) below halfway, fma(-step, steps-1-i, end) above)
//   torch.cumprod float32: ReduceOpsKernel.cpp cumprod_cpu_kernel, accumulates in double
//   np.linspace / np.arange(float) / np.interp / np.round: numpy/_core/function_base.py linspace,
//     numpy/_core/src/multiarray/arraytypes.c.src DOUBLE_fill, compiled_base.c arr_interp, rint (half-even)
//   betas_for_alpha_bar: diffusers schedulers/scheduling_ddim.py:51-100
import Foundation

enum TableMath {
    static func torchLinspace(_ start: Double, _ end: Double, _ steps: Int) -> [Float] {
        guard steps > 1 else { return steps == 1 ? [Float(start)] : [] }
        let s = Float(start), e = Float(end)
        let step = (e - s) / Float(steps - 1)
        let half = steps / 2
        return (0..<steps).map { i in
            i < half ? s.addingProduct(step, Float(i)) : e.addingProduct(-step, Float(steps - 1 - i))
        }
    }

    static func cumprodF32(_ x: [Float]) -> [Float] {
        var acc = 1.0
        return x.map { acc *= Double($0); return Float(acc) }
    }

    static func npLinspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        guard num > 0 else { return [] }
        let div = num - 1
        let delta = stop - start
        var y = (0..<num).map(Double.init)
        if div > 0 {
            let step = delta / Double(div)
            if step == 0 {
                y = y.map { $0 / Double(div) * delta }
            } else {
                y = y.map { $0 * step }
            }
        } else {
            y = y.map { $0 * delta }
        }
        y = y.map { $0 + start }
        if div > 0 { y[num - 1] = stop }
        return y
    }

    /// np.arange(start, stop, step) for doubles (length ceil((stop-start)/step), DOUBLE_fill values).
    static func npArange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let lenD = ((stop - start) / step).rounded(.up)
        guard lenD > 0, lenD.isFinite else { return [] }
        let len = Int(lenD)
        if len == 1 { return [start] }
        let second = start + step
        let delta = second - start
        var out = [start, second]
        out.reserveCapacity(len)
        for i in 2..<len { out.append(start + Double(i) * delta) }
        return out
    }

    /// np.interp(x, arange(0, fp.count), fp) in double.
    static func npInterpIndex(_ x: [Double], _ fp: [Float]) -> [Double] {
        let n = fp.count
        let dy = fp.map(Double.init)
        return x.map { xv in
            if xv.isNaN { return xv }
            if xv < 0 { return dy[0] }
            if xv >= Double(n - 1) { return dy[n - 1] }
            let j = Int(xv.rounded(.down))
            if Double(j) == xv { return dy[j] }
            let slope = (dy[j + 1] - dy[j]) / 1.0
            return slope * (xv - Double(j)) + dy[j]
        }
    }

    /// np.round (half to even).
    @inline(__always) static func npRound(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// diffusers `betas_for_alpha_bar(T)` with the cosine transform, max_beta 0.999.
    static func betasForAlphaBar(_ t: Int) -> [Float] {
        func alphaBar(_ x: Double) -> Double {
            let c = cos((x + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        return (0..<t).map { i in
            let t1 = Double(i) / Double(t), t2 = Double(i + 1) / Double(t)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }

    /// `torch.sqrt(x)` / `x ** 0.5` on float32 (correctly rounded; torch's VML may differ by 1 ulp, docs/engine.md §4.0).
    @inline(__always) static func sqrtF(_ x: Float) -> Float { x.squareRoot() }

    /// `((1 - ac) / ac) ** 0.5` in float32.
    static func sigmaTable(_ ac: [Float]) -> [Float] { ac.map { ((1 - $0) / $0).squareRoot() } }
}
