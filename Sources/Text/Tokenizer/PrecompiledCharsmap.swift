// SentencePiece's `precompiled_charsmap` (the normalizer_spec of every T5 tokenizer): a darts-clone double-array
// trie over UTF-8 keys whose values index NUL-terminated replacement strings. Normalization as
// huggingface/spm_precompiled src/lib.rs (`normalize_string`, `transform`, `common_prefix_search`) and tokenizers
// tokenizers/src/normalizers/precompiled.rs: per extended grapheme cluster shorter than 6 bytes, the
// replacement of its SHORTEST trie prefix (sic: not necessarily the whole cluster); otherwise per scalar.

struct PrecompiledCharsmap: Sendable {
    let trie: [UInt32]
    let normalized: [UInt8]

    /// `blob`: u32 little-endian trie size in bytes, the trie units, then the replacement strings.
    init(_ blob: [UInt8], file: String) throws {
        guard blob.count >= 4 else { throw TextError(.badTokenizer, file: file, "precompiled_charsmap is truncated") }
        let size = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        guard size % 4 == 0, size >= 4, 4 + size <= blob.count else {
            throw TextError(.badTokenizer, file: file, "precompiled_charsmap trie size \(size) does not fit its \(blob.count) bytes")
        }
        var t = [UInt32](repeating: 0, count: size / 4)
        for i in 0..<(size / 4) {
            let b = 4 + 4 * i
            t[i] = UInt32(blob[b]) | UInt32(blob[b + 1]) << 8 | UInt32(blob[b + 2]) << 16 | UInt32(blob[b + 3]) << 24
        }
        trie = t
        normalized = Array(blob[(4 + size)...])
        guard String(validating: normalized, as: UTF8.self) != nil else {
            throw TextError(.badTokenizer, file: file, "precompiled_charsmap replacements are not UTF-8")
        }
    }

    /// Value of the shortest key that is a prefix of `key` (darts-clone unit layout: has_leaf bit 8,
    /// value low 31 bits, label low 8 bits + bit 31, offset (unit >> 10) << ((unit & 512) >> 6)).
    func firstPrefixValue<C: Collection>(_ key: C) -> Int? where C.Element == UInt8 {
        @inline(__always) func offset(_ u: UInt32) -> Int { Int(u >> 10) << Int((u & (1 << 9)) >> 6) }
        var pos = 0
        guard !trie.isEmpty else { return nil }
        pos ^= offset(trie[0])
        for c in key {
            if c == 0 { return nil }
            pos ^= Int(c)
            guard pos < trie.count else { return nil }
            let unit = trie[pos]
            if unit & ((1 << 31) | 0xFF) != UInt32(c) { return nil }
            pos ^= offset(unit)
            if (unit >> 8) & 1 == 1 {
                guard pos < trie.count else { return nil }
                return Int(trie[pos] & ((1 << 31) - 1))
            }
        }
        return nil
    }

    /// The replacement for `chunk`, if the trie has a prefix of it.
    func transform<C: Collection>(_ chunk: C) -> ArraySlice<UInt8>? where C.Element == UInt8 {
        guard let start = firstPrefixValue(chunk), start <= normalized.count else { return nil }
        var end = start
        while end < normalized.count, normalized[end] != 0 { end += 1 }
        return normalized[start..<end]
    }

    func normalize(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for grapheme in s {
            let bytes = grapheme.utf8
            if bytes.count < 6, let rep = transform(bytes) {
                out.append(contentsOf: rep)
                continue
            }
            for scalar in grapheme.unicodeScalars {
                let part = Array(String(scalar).utf8)
                if let rep = transform(part) { out.append(contentsOf: rep) } else { out.append(contentsOf: part) }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
