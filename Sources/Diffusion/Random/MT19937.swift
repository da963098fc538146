// MT19937 exactly as PyTorch's CPU generator engine.
// Port of pytorch/pytorch aten/src/ATen/core/MT19937RNGEngine.h:111-191 (mt19937_engine: init_genrand seeding,
// standard twist with MATRIX_A 0x9908b0df, tempering) — see docs/engine.md §5.1.
// Output is identical to std::mt19937(UInt32(seed)).

/// The 32-bit Mersenne Twister state, seeded like `at::mt19937(seed)`.
public struct MT19937: Sendable, Equatable {
    static let n = 624
    static let m = 397
    static let matrixA: UInt32 = 0x9908_b0df
    static let upperMask: UInt32 = 0x8000_0000
    static let lowerMask: UInt32 = 0x7fff_ffff

    private var state: [UInt32]
    private var left: Int
    private var next: Int

    /// Seeds like `at::mt19937(seed)`: only the low 32 bits of `seed` are used.
    public init(seed: UInt64) {
        var s = [UInt32](repeating: 0, count: Self.n)
        s[0] = UInt32(truncatingIfNeeded: seed & 0xffff_ffff)
        for j in 1..<Self.n {
            let p = s[j - 1]
            s[j] = 1_812_433_253 &* (p ^ (p >> 30)) &+ UInt32(j)
        }
        state = s
        left = 1
        next = 0
    }

    private mutating func nextState() {
        left = Self.n
        next = 0
        state.withUnsafeMutableBufferPointer { st in
            @inline(__always) func mix(_ u: UInt32, _ v: UInt32) -> UInt32 {
                ((u & Self.upperMask) | (v & Self.lowerMask)) >> 1 ^ ((v & 1) != 0 ? Self.matrixA : 0)
            }
            var p = 0
            for _ in 0..<(Self.n - Self.m) {
                st[p] = st[p + Self.m] ^ mix(st[p], st[p + 1])
                p += 1
            }
            for _ in 0..<(Self.m - 1) {
                st[p] = st[p + Self.m - Self.n] ^ mix(st[p], st[p + 1])
                p += 1
            }
            st[p] = st[p + Self.m - Self.n] ^ mix(st[p], st[0])
        }
    }

    /// One tempered 32-bit output (`mt19937_engine::operator()`).
    public mutating func next32() -> UInt32 {
        left -= 1
        if left == 0 { nextState() }
        var y = state[next]
        next += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }
}
