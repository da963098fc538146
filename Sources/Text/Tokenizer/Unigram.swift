// Unigram language model of tokenizer.json's `"model": {"type": "Unigram"}` (tokenizers tokenizers/src/models/
// unigram/model.rs `from`, `encode_optimized`, `tokenize`; SentencePiece unigram_model.cc): the best-scoring
// segmentation by Viterbi over the pieces found by a prefix trie at each character; a character no piece covers
// is <unk> at (min score − 10); consecutive <unk> are fused; with byte_fallback an <unk> becomes its <0xXX> bytes.
import Weights

struct UnigramModel: Sendable {
    let pieces: [[UInt8]]
    let scores: [Double]
    let ids: [[UInt8]: Int]
    let unkID: Int?
    let byteFallback: Bool
    let minScore: Double
    /// Prefix trie over piece bytes: (node << 8 | byte) → child node; `terminal[node]` = piece id or -1.
    private let children: [Int: Int]
    private let terminal: [Int]

    static let unkPenalty = 10.0

    init(_ o: [String: JSONValue], file: String) throws {
        guard let list = o["vocab"]?.arrayValue, !list.isEmpty else {
            throw TextError(.badTokenizer, file: file, "Unigram model without a vocab list")
        }
        var pieces: [[UInt8]] = [], scores: [Double] = [], ids: [[UInt8]: Int] = [:]
        var children: [Int: Int] = [:], terminal: [Int] = [-1]
        var minScore = Double.infinity
        for (id, entry) in list.enumerated() {
            guard let pair = entry.arrayValue, pair.count == 2, let piece = pair[0].stringValue, let score = pair[1].doubleValue else {
                throw TextError(.badTokenizer, file: file, "Unigram vocab entry \(id) is not [piece, score]")
            }
            let bytes = Array(piece.utf8)
            pieces.append(bytes)
            scores.append(score)
            ids[bytes] = id  // model.rs: a later duplicate wins
            minScore = min(minScore, score)
            var node = 0
            for b in bytes {
                let key = node << 8 | Int(b)
                if let c = children[key] { node = c } else {
                    terminal.append(-1)
                    children[key] = terminal.count - 1
                    node = terminal.count - 1
                }
            }
            terminal[node] = id
        }
        if let unk = o["unk_id"]?.intValue {
            guard unk >= 0, unk < pieces.count else {
                throw TextError(.badTokenizer, file: file, "Unigram unk_id \(unk) is outside the vocab of \(pieces.count)")
            }
            unkID = unk
        } else {
            unkID = nil
        }
        self.pieces = pieces
        self.scores = scores
        self.ids = ids
        self.children = children
        self.terminal = terminal
        self.minScore = minScore
        byteFallback = o["byte_fallback"]?.boolValue ?? false
    }

    func tokenize(_ piece: [Unicode.Scalar]) -> [Int] {
        let s = Array(String(String.UnicodeScalarView(piece)).utf8)
        let size = s.count
        guard size > 0 else { return [] }
        let unkScore = minScore - Self.unkPenalty
        // best path ending at each byte offset: (score, start, id)
        var bestScore = [Double](repeating: 0, count: size + 1)
        var bestStart = [Int](repeating: -1, count: size + 1)
        var bestID = [Int](repeating: 0, count: size + 1)
        var start = 0
        while start < size {
            let here = bestScore[start]
            let lead = s[start]
            let mblen = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            var single = false
            var node = 0
            var end = start
            while end < size, let c = children[node << 8 | Int(s[end])] {
                node = c
                end += 1
                let id = terminal[node]
                guard id >= 0 else { continue }
                let candidate = scores[id] + here
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestID[end] = id
                }
                if end - start == mblen { single = true }
            }
            if !single, let unk = unkID {
                let end = min(size, start + mblen)
                let candidate = unkScore + here
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestID[end] = unk
                }
            }
            start += mblen
        }
        // Backtrack; fuse consecutive unk (fuse_unk is always on for Unigram).
        var spans: [(Range<Int>, Int)] = []
        var end = size
        while end > 0 {
            let begin = bestStart[end]
            guard begin >= 0 else { break }  // only without unk_id: the reference errors; we stop
            if bestID[end] == unkID, let last = spans.last, last.1 == unkID {
                spans[spans.count - 1] = (begin..<last.0.upperBound, last.1)
            } else {
                spans.append((begin..<end, bestID[end]))
            }
            end = begin
        }
        var out: [Int] = []
        for (range, _) in spans.reversed() {
            let text = Array(s[range])
            if let known = ids[text] {  // model.rs `tokenize`: by the span's text
                out.append(known)
                continue
            }
            if byteFallback {
                let bytes = text.map { ids[Array(byteToken($0).utf8)] }
                if !bytes.contains(where: { $0 == nil }) {
                    out.append(contentsOf: bytes.map { $0! })
                    continue
                }
            }
            if let unk = unkID { out.append(unk) }
        }
        return out
    }
}
