// torch.Generator (CPU) and torch.randn(float32) reproduced bit for bit. See docs/engine.md §5.
// Ports:
//   aten/src/ATen/CPUGeneratorImpl.cpp            set_current_seed, random(), random64(), next_double_normal_sample
//   aten/src/ATen/core/DistributionsHelper.h:99-119, 172-203   uniform_real_distribution, normal_distribution<double>
//   aten/src/ATen/core/TransformationHelper.h:84-90            uniform_real (24-bit float / 53-bit double)
//   aten/src/ATen/native/cpu/DistributionTemplates.h           normal_kernel / normal_fill (n >= 16 vs n < 16)
//   aten/src/ATen/native/cpu/DistributionKernels.cpp           normal_fill_16_AVX2 (x86-64 dispatch)
import Foundation
import Tensor

/// Which 16-wide Box–Muller kernel torch would have used on the machine that produced the reference numbers.
public enum NormalKernel: String, Sendable, Codable {
    /// `normal_fill_16_AVX2` + avx_mathfun.h (x86-64 wheels, also AVX-512 CPUs). The default.
    case avx2
    /// `normal_fill_16` with the platform libm (aarch64 / macOS arm64 / ATEN_CPU_CAPABILITY=default).
    case generic
}

/// A PyTorch CPU generator: `torch.Generator().manual_seed(seed)`.
public struct TorchGenerator: Sendable, Equatable {
    private var engine: MT19937
    /// `next_double_normal_sample`: the second Box–Muller value of the small-n path, kept across calls.
    private var cachedDoubleNormal: Double?
    public let kernel: NormalKernel

    /// `torch.Generator().manual_seed(seed)` (negative seeds wrap mod 2^64; only the low 32 bits matter).
    public init(seed: Int64, kernel: NormalKernel = .avx2) {
        self.init(seed: UInt64(bitPattern: seed), kernel: kernel)
    }

    public init(seed: UInt64, kernel: NormalKernel = .avx2) {
        engine = MT19937(seed: seed)
        cachedDoubleNormal = nil
        self.kernel = kernel
    }

    /// `manual_seed`: reseeds and clears the cached normal sample.
    public mutating func manualSeed(_ seed: Int64) {
        engine = MT19937(seed: UInt64(bitPattern: seed))
        cachedDoubleNormal = nil
    }

    /// CPUGeneratorImpl::random(): one 32-bit draw.
    public mutating func random32() -> UInt32 { engine.next32() }

    /// CPUGeneratorImpl::random64(): the first draw is the high word.
    public mutating func random64() -> UInt64 {
        let hi = UInt64(engine.next32())
        let lo = UInt64(engine.next32())
        return (hi << 32) | lo
    }

    /// uniform_real_distribution<float>(0, 1): 24 random bits.
    mutating func uniformFloat() -> Float {
        Float(random32() & 0xFF_FFFF) * (1.0 / 16_777_216.0)
    }

    /// uniform_real_distribution<double>(0, 1): 53 random bits of one random64().
    mutating func uniformDouble() -> Double {
        Double(random64() & ((1 << 53) - 1)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// at::normal_distribution<double>(0, 1) with the generator's cached second sample.
    mutating func normalDouble() -> Double {
        if let cached = cachedDoubleNormal {
            cachedDoubleNormal = nil
            return cached
        }
        let u1 = uniformDouble()
        let u2 = uniformDouble()
        let r = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedDoubleNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }

    /// `torch.randn(count, generator=self, dtype=torch.float32)` (result depends only on the element count).
    public mutating func randn(count: Int) -> [Float] {
        guard count > 0 else { return [] }
        if count < 16 {
            // normal_kernel's serial path: Float(normal_distribution<double>() * 1 + 0)
            return (0..<count).map { _ in Float(normalDouble() * 1.0 + 0.0) }
        }
        var d = [Float](repeating: 0, count: count)
        for i in 0..<count { d[i] = uniformFloat() }
        let kernel = self.kernel
        d.withUnsafeMutableBufferPointer { buf in
            var i = 0
            while i + 16 <= count {
                BoxMuller16.apply(buf.baseAddress! + i, kernel: kernel)
                i += 16
            }
        }
        if count % 16 != 0 {
            // Recompute the last 16 values from 16 fresh uniforms (normal_fill, DistributionTemplates.h).
            for i in (count - 16)..<count { d[i] = uniformFloat() }
            d.withUnsafeMutableBufferPointer { buf in
                BoxMuller16.apply(buf.baseAddress! + (count - 16), kernel: kernel)
            }
        }
        return d
    }

    /// `torch.randn(shape, generator=self)` as a Tensor.
    public mutating func randn(shape: [Int]) -> Tensor {
        Tensor(shape: shape, data: randn(count: shape.reduce(1, *)))
    }
}

