// Pre-tokenizers of tokenizer.json (tokenizers tokenizers/src/pre_tokenizers/{metaspace,whitespace,split,
// sequence}.rs and the splitting rules of tokenizers/src/tokenizer/normalizer.rs `split`): each turns pieces
// into smaller pieces; empty pieces are dropped (tokenizer/pre_tokenizer.rs `split`).
import Weights

/// A piece of one normalized segment. `atOrigin`: it starts where the input text starts (Metaspace's
/// prepend_scheme "first" asks for `offsets_original().0 == 0`; tracked here as "first segment, normalized
/// offset 0").
struct Piece {
    var scalars: [Unicode.Scalar]
    var atOrigin: Bool
}

/// How the matched delimiters of a split are kept (tokenizers `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

indirect enum PreTokenizer: Sendable {
    enum PrependScheme: String, Sendable { case always, first, never }

    case sequence([PreTokenizer])
    case metaspace(replacement: Unicode.Scalar, prepend: PrependScheme, split: Bool)
    case whitespaceSplit
    case split(TextPattern, SplitBehavior, invert: Bool)

    static func parse(_ v: JSONValue, file: String) throws -> PreTokenizer? {
        if v.isNull { return nil }
        guard let o = v.objectValue, let type = o["type"]?.stringValue else {
            throw TextError(.badTokenizer, file: file, "pre_tokenizer without a type")
        }
        switch type {
        case "Sequence":
            guard let list = o["pretokenizers"]?.arrayValue else {
                throw TextError(.badTokenizer, file: file, "Sequence pre_tokenizer without pretokenizers")
            }
            return .sequence(try list.compactMap { try parse($0, file: file) })
        case "Metaspace":
            guard let r = o["replacement"]?.stringValue, r.unicodeScalars.count == 1, let scalar = r.unicodeScalars.first else {
                throw TextError(.badTokenizer, file: file, "Metaspace replacement must be one character")
            }
            // Older files carry add_prefix_space instead of prepend_scheme.
            let schemeName = o["prepend_scheme"]?.stringValue ?? ((o["add_prefix_space"]?.boolValue ?? true) ? "always" : "never")
            guard let scheme = PrependScheme(rawValue: schemeName) else {
                throw TextError(.badTokenizer, file: file, "Metaspace prepend_scheme \(schemeName) is not always, first or never")
            }
            return .metaspace(replacement: scalar, prepend: scheme, split: o["split"]?.boolValue ?? true)
        case "WhitespaceSplit":
            return .whitespaceSplit
        case "Split":
            guard let p = o["pattern"], let b = o["behavior"]?.stringValue else {
                throw TextError(.badTokenizer, file: file, "Split pre_tokenizer needs pattern and behavior")
            }
            guard let behavior = SplitBehavior(rawValue: b) else {
                throw TextError(.badTokenizer, file: file, "Split behavior \(b) is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
            }
            return .split(try TextPattern.parse(p, file: file), behavior, invert: o["invert"]?.boolValue ?? false)
        default:
            throw TextError(.unsupported, file: file, "pre_tokenizer type \(type) is not supported (supported: Sequence, Metaspace, WhitespaceSplit, Split)")
        }
    }

    func apply(_ pieces: [Piece]) -> [Piece] {
        switch self {
        case .sequence(let list):
            return list.reduce(pieces) { $1.apply($0) }
        case .whitespaceSplit:
            // metaspace.rs / whitespace.rs: split on char::is_whitespace, delimiters removed.
            return pieces.flatMap { piece in
                let found = piece.scalars.indices.filter { piece.scalars[$0].properties.isWhitespace }.map { $0..<($0 + 1) }
                return Self.split(piece, matches: found, behavior: .removed, invert: false)
            }
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { Self.split($0, matches: pattern.matches($0.scalars), behavior: behavior, invert: invert) }
        case .metaspace(let replacement, let prepend, let split):
            return pieces.flatMap { piece -> [Piece] in
                var p = piece
                p.scalars = p.scalars.map { $0 == " " ? replacement : $0 }
                let prefix = p.scalars.first == replacement
                switch prepend {
                case .always where !prefix, .first where !prefix && p.atOrigin:
                    p.scalars.insert(replacement, at: 0)
                default: break
                }
                guard split else { return p.scalars.isEmpty ? [] : [p] }
                let found = p.scalars.indices.filter { p.scalars[$0] == replacement }.map { $0..<($0 + 1) }
                return Self.split(p, matches: found, behavior: .mergedWithNext, invert: false)
            }
        }
    }

    /// normalizer.rs `split`: the matches and the text between them, merged or dropped as `behavior` says.
    static func split(_ piece: Piece, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool) -> [Piece] {
        let n = piece.scalars.count
        guard n > 0 else { return [] }
        // (range, isMatch) covering the piece
        var parts: [(Range<Int>, Bool)] = []
        var prev = 0
        for m in matches {
            if prev != m.lowerBound { parts.append((prev..<m.lowerBound, false)) }
            parts.append((m, true))
            prev = m.upperBound
        }
        if prev != n { parts.append((prev..<n, false)) }
        if invert { parts = parts.map { ($0.0, !$0.1) } }

        var kept: [Range<Int>] = []
        switch behavior {
        case .isolated:
            kept = parts.map(\.0)
        case .removed:
            kept = parts.filter { !$0.1 }.map(\.0)
        case .contiguous:
            var previous = false
            for (r, isMatch) in parts {
                if isMatch == previous, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    kept.append(r)
                }
                previous = isMatch
            }
        case .mergedWithPrevious:
            var previous = false
            for (r, isMatch) in parts {
                if isMatch && !previous, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    kept.append(r)
                }
                previous = isMatch
            }
        case .mergedWithNext:
            var previous = false
            for (r, isMatch) in parts.reversed() {
                if isMatch && !previous, let last = kept.last {
                    kept[kept.count - 1] = r.lowerBound..<last.upperBound
                } else {
                    kept.append(r)
                }
                previous = isMatch
            }
            kept.reverse()
        }
        return kept.filter { !$0.isEmpty }.map {
            Piece(scalars: Array(piece.scalars[$0]), atOrigin: piece.atOrigin && $0.lowerBound == 0)
        }
    }
}
