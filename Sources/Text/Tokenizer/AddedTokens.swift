// Added tokens of tokenizer.json (tokenizers tokenizers/src/tokenizer/added_vocabulary.rs
// `extract_and_normalize`, `find_matches`): tokens with normalized=false are found in the raw text, the others
// in each normalized segment; leftmost-longest matches; single_word / lstrip / rstrip as the reference.
import Weights

struct AddedToken: Sendable {
    let content: [Unicode.Scalar]
    let id: Int
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    let normalized: Bool
    let special: Bool
}

/// One token set matched leftmost-longest (aho-corasick MatchKind::LeftmostLongest), indexed by first scalar.
struct AddedMatcher: Sendable {
    private let byFirst: [Unicode.Scalar: [(pattern: [Unicode.Scalar], token: AddedToken)]]
    var isEmpty: Bool { byFirst.isEmpty }

    init(_ entries: [(pattern: [Unicode.Scalar], token: AddedToken)]) {
        var map: [Unicode.Scalar: [(pattern: [Unicode.Scalar], token: AddedToken)]] = [:]
        for e in entries where !e.pattern.isEmpty { map[e.pattern[0], default: []].append(e) }
        byFirst = map.mapValues { $0.sorted { $0.pattern.count > $1.pattern.count } }
    }

    /// The text cut into (range, added token or nil), covering it; `find_matches` with its strip rules.
    func split(_ s: [Unicode.Scalar]) -> [(Range<Int>, AddedToken?)] {
        guard !s.isEmpty else { return [] }
        guard !byFirst.isEmpty else { return [(0..<s.count, nil)] }
        var out: [(Range<Int>, AddedToken?)] = []
        var startOffset = 0
        var i = 0
        while i < s.count {
            guard let candidates = byFirst[s[i]],
                  let hit = candidates.first(where: { c in
                      i + c.pattern.count <= s.count && (0..<c.pattern.count).allSatisfy { s[i + $0] == c.pattern[$0] }
                  })
            else { i += 1; continue }
            var start = i, stop = i + hit.pattern.count
            let token = hit.token
            if token.singleWord {
                let startSpace = start == 0 || !isWordScalar(s[start - 1])
                let stopSpace = stop == s.count || !isWordScalar(s[stop])
                if !startSpace || !stopSpace { i = stop; continue }  // the search goes on after the match
            }
            if token.lstrip {
                var b = start
                while b > 0, s[b - 1].properties.isWhitespace { b -= 1 }
                start = max(b, startOffset)
            }
            if token.rstrip {
                while stop < s.count, s[stop].properties.isWhitespace { stop += 1 }
            }
            if startOffset < start { out.append((startOffset..<start, nil)) }
            out.append((start..<stop, token))
            startOffset = stop
            i = stop
        }
        if startOffset != s.count { out.append((startOffset..<s.count, nil)) }
        return out
    }
}

/// Regex `\w` (Unicode): alphabetic, marks, decimal numbers, connector punctuation, join controls.
private func isWordScalar(_ u: Unicode.Scalar) -> Bool {
    let p = u.properties
    if p.isAlphabetic || p.isJoinControl { return true }
    switch p.generalCategory {
    case .decimalNumber, .connectorPunctuation, .nonspacingMark, .spacingMark, .enclosingMark: return true
    default: return false
    }
}
