// FNV-1a, 64-bit: a short stable hash for cache file names and cache keys (not for security).

public enum FNV1a {
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let prime: UInt64 = 0x100_0000_01b3

    /// The hash of `bytes`, continuing from `seed`.
    public static func hash<S: Sequence>(_ bytes: S, seed: UInt64 = offsetBasis) -> UInt64 where S.Element == UInt8 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* prime }
        return h
    }

    /// The hash as lowercase hex (no padding), e.g. for a file name.
    public static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        String(hash(bytes), radix: 16)
    }
}
