// Byte-pair encoding of tokenizer.json's `"model": {"type": "BPE"}` (tokenizers tokenizers/src/models/bpe/
// model.rs `merge_word`, `tokenize_with_cache`, word.rs `merge_all`): each scalar is a symbol (or its UTF-8
// bytes as <0xXX> with byte_fallback, or <unk>, consecutive ones fused with fuse_unk), then the pair of
// lowest merge rank (leftmost on ties) is merged until none is left. ignore_merges: a piece that is itself in
// the vocabulary is one token.
import Weights

struct BPEModel: Sendable {
    let vocab: [[UInt8]: Int]
    /// (left id, right id) packed → (rank, merged id)
    let merges: [UInt64: (rank: Int, id: Int)]
    let unkID: Int?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let continuingPrefix: [UInt8]?
    let endSuffix: [UInt8]?
    /// <0x00> … <0xFF> ids, when the vocabulary has them all
    let byteIDs: [Int]?

    init(_ o: [String: JSONValue], file: String) throws {
        guard let v = o["vocab"]?.objectValue else {
            throw TextError(.badTokenizer, file: file, "BPE model without a vocab object")
        }
        var vocab: [[UInt8]: Int] = [:]
        vocab.reserveCapacity(v.count)
        for (token, idValue) in v {
            guard let id = idValue.intValue, id >= 0 else {
                throw TextError(.badTokenizer, file: file, "BPE vocab entry \(token) has no integer id")
            }
            vocab[Array(token.utf8)] = id
        }
        self.vocab = vocab
        guard let list = o["merges"]?.arrayValue else {
            throw TextError(.badTokenizer, file: file, "BPE model without merges")
        }
        var merges: [UInt64: (rank: Int, id: Int)] = [:]
        merges.reserveCapacity(list.count)
        for (rank, m) in list.enumerated() {
            // Two forms: "a b" (older files) and ["a", "b"].
            let pair: [String]
            if let s = m.stringValue {
                pair = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                pair = m.arrayValue?.compactMap(\.stringValue) ?? []
            }
            guard pair.count == 2 else {
                throw TextError(.badTokenizer, file: file, "BPE merge \(rank) is not a pair of tokens")
            }
            guard let a = vocab[Array(pair[0].utf8)], let b = vocab[Array(pair[1].utf8)],
                  let merged = vocab[Array((pair[0] + pair[1]).utf8)] else {
                throw TextError(.badTokenizer, file: file, "BPE merge \(rank) (\(pair[0]) \(pair[1])) uses a token missing from the vocab")
            }
            merges[UInt64(a) << 32 | UInt64(b)] = (rank, merged)
        }
        self.merges = merges
        if let unk = o["unk_token"]?.stringValue {
            guard let id = vocab[Array(unk.utf8)] else {
                throw TextError(.badTokenizer, file: file, "BPE unk_token \(unk) is not in the vocab")
            }
            unkID = id
        } else {
            unkID = nil
        }
        fuseUnk = o["fuse_unk"]?.boolValue ?? false
        byteFallback = o["byte_fallback"]?.boolValue ?? false
        ignoreMerges = o["ignore_merges"]?.boolValue ?? false
        continuingPrefix = o["continuing_subword_prefix"]?.stringValue.map { Array($0.utf8) }
        endSuffix = o["end_of_word_suffix"]?.stringValue.map { Array($0.utf8) }
        let bytes = (0..<256).map { vocab[Array(byteToken(UInt8($0)).utf8)] }
        byteIDs = bytes.contains(where: { $0 == nil }) ? nil : bytes.map { $0! }
        if let d = o["dropout"]?.doubleValue, d > 0 {
            throw TextError(.unsupported, file: file, "BPE dropout \(d) is for training; inference needs null or 0")
        }
    }

    func tokenize(_ piece: [Unicode.Scalar]) -> [Int] {
        guard !piece.isEmpty else { return [] }
        if ignoreMerges, let id = vocab[Array(String(String.UnicodeScalarView(piece)).utf8)] { return [id] }
        // Symbols: ids with their byte lengths (for unk fusing only).
        var symbols: [Int] = []
        symbols.reserveCapacity(piece.count)
        var pendingUnk = false
        for (i, scalar) in piece.enumerated() {
            var s = Array(String(scalar).utf8)
            if i > 0, let p = continuingPrefix { s = p + s }
            if i == piece.count - 1, let x = endSuffix { s += x }
            if let id = vocab[s] {
                if pendingUnk, let unk = unkID { symbols.append(unk); pendingUnk = false }
                symbols.append(id)
                continue
            }
            if byteFallback, let bytes = byteIDs {
                // model.rs: a byte-fallback char does not flush a pending unk (it cannot be pending with all
                // 256 byte tokens present).
                for b in s { symbols.append(bytes[Int(b)]) }
                continue
            }
            guard let unk = unkID else { continue }
            if pendingUnk {
                if !fuseUnk { symbols.append(unk) }
            }
            pendingUnk = true
        }
        if pendingUnk, let unk = unkID { symbols.append(unk) }
        return merge(symbols)
    }

    /// word.rs `merge_all` without dropout: a min-heap of (rank, position), stale entries skipped.
    func merge(_ ids: [Int]) -> [Int] {
        let n = ids.count
        guard n > 1 else { return ids }
        var id = ids
        var prev = (0..<n).map { $0 - 1 }
        var next = (0..<n).map { $0 + 1 < n ? $0 + 1 : -1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            if let m = merges[UInt64(id[i]) << 32 | UInt64(id[i + 1])] { heap.push(.init(rank: m.rank, pos: i, newID: m.id)) }
        }
        while let top = heap.pop() {
            let pos = top.pos
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = next[pos]
            guard let m = merges[UInt64(id[pos]) << 32 | UInt64(id[right])], m.id == top.newID else { continue }
            id[pos] = top.newID
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[next[right]] = pos }
            if prev[pos] >= 0, let m2 = merges[UInt64(id[prev[pos]]) << 32 | UInt64(id[pos])] {
                heap.push(.init(rank: m2.rank, pos: prev[pos], newID: m2.id))
            }
            if next[pos] >= 0, let m3 = merges[UInt64(id[pos]) << 32 | UInt64(id[next[pos]])] {
                heap.push(.init(rank: m3.rank, pos: pos, newID: m3.id))
            }
        }
        return (0..<n).filter { alive[$0] }.map { id[$0] }
    }
}

/// "<0x41>" for byte 0x41 (tokenizers formats them `<{b:#04X}>`).
func byteToken(_ b: UInt8) -> String {
    let hex = Array("0123456789ABCDEF")
    return "<0x\(hex[Int(b >> 4)])\(hex[Int(b & 15)])>"
}

/// A binary min-heap ordered by (rank, pos).
struct MergeHeap {
    struct Entry { var rank: Int; var pos: Int; var newID: Int }
    private var items: [Entry] = []

    @inline(__always) private func less(_ a: Entry, _ b: Entry) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos }

    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard less(items[i], items[p]) else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Entry? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, less(items[l], items[m]) { m = l }
                if r < items.count, less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}
