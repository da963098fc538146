// Normalizers of tokenizer.json, applied to each piece that the added tokens leave (tokenizers
// tokenizers/src/normalizers/{mod,replace,prepend,strip,utils,unicode,precompiled}.rs). Only the normalized text
// matters here (ids, not offsets), so each is a String → String function over Unicode scalars; Swift's String
// comparison (canonical equivalence) is never used on token text.
import Foundation
import Weights

/// One normalizer of a tokenizer.json `normalizer` entry.
indirect enum Normalizer: Sendable {
    case sequence([Normalizer])
    case replace(TextPattern, String)
    case prepend(String)
    case strip(left: Bool, right: Bool)
    case lowercase
    case nfc, nfd, nfkc, nfkd
    case precompiled(PrecompiledCharsmap)

    static func parse(_ v: JSONValue, file: String) throws -> Normalizer? {
        if v.isNull { return nil }
        guard let o = v.objectValue, let type = o["type"]?.stringValue else {
            throw TextError(.badTokenizer, file: file, "normalizer without a type")
        }
        switch type {
        case "Sequence":
            guard let list = o["normalizers"]?.arrayValue else {
                throw TextError(.badTokenizer, file: file, "Sequence normalizer without normalizers")
            }
            return .sequence(try list.compactMap { try parse($0, file: file) })
        case "Replace":
            guard let p = o["pattern"], let content = o["content"]?.stringValue else {
                throw TextError(.badTokenizer, file: file, "Replace normalizer needs pattern and content")
            }
            return .replace(try TextPattern.parse(p, file: file), content)
        case "Prepend":
            guard let p = o["prepend"]?.stringValue else {
                throw TextError(.badTokenizer, file: file, "Prepend normalizer without prepend")
            }
            return .prepend(p)
        case "Strip":
            return .strip(left: o["strip_left"]?.boolValue ?? true, right: o["strip_right"]?.boolValue ?? true)
        case "Lowercase": return .lowercase
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Precompiled":
            guard let b64 = o["precompiled_charsmap"]?.stringValue else {
                throw TextError(.badTokenizer, file: file, "Precompiled normalizer without precompiled_charsmap")
            }
            guard let data = Data(base64Encoded: b64) else {
                throw TextError(.badTokenizer, file: file, "Precompiled charsmap is not base64")
            }
            return .precompiled(try PrecompiledCharsmap(Array(data), file: file))
        default:
            throw TextError(.unsupported, file: file, "normalizer type \(type) is not supported (supported: Sequence, Replace, Prepend, Strip, Lowercase, NFC, NFD, NFKC, NFKD, Precompiled)")
        }
    }

    func normalize(_ s: String) -> String {
        switch self {
        case .sequence(let list): return list.reduce(s) { $1.normalize($0) }
        case .replace(let pattern, let content): return pattern.replace(in: s, with: content)
        case .prepend(let p): return s.isEmpty ? s : p + s
        case .strip(let left, let right):
            var scalars = Array(s.unicodeScalars)[...]
            if left { while let f = scalars.first, f.properties.isWhitespace { scalars.removeFirst() } }
            if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
            return String(String.UnicodeScalarView(scalars))
        case .lowercase:
            // Rust `char::to_lowercase` per scalar (no context: Σ → σ everywhere).
            var out = String.UnicodeScalarView()
            for u in s.unicodeScalars { out.append(contentsOf: u.properties.lowercaseMapping.unicodeScalars) }
            return String(out)
        case .nfc: return s.precomposedStringWithCanonicalMapping
        case .nfd: return s.decomposedStringWithCanonicalMapping
        case .nfkc: return s.precomposedStringWithCompatibilityMapping
        case .nfkd: return s.decomposedStringWithCompatibilityMapping
        case .precompiled(let map): return map.normalize(s)
        }
    }
}

/// A `{"String": …}` or `{"Regex": …}` pattern (tokenizers tokenizer/pattern.rs), matched over Unicode scalars.
enum TextPattern: @unchecked Sendable {
    case literal([Unicode.Scalar])
    case regex(NSRegularExpression)

    static func parse(_ v: JSONValue, file: String) throws -> TextPattern {
        if let s = v.objectValue?["String"]?.stringValue { return .literal(Array(s.unicodeScalars)) }
        if let r = v.objectValue?["Regex"]?.stringValue {
            do { return .regex(try NSRegularExpression(pattern: r)) } catch {
                throw TextError(.badTokenizer, file: file, "regex \(r) does not compile")
            }
        }
        if let s = v.stringValue { return .literal(Array(s.unicodeScalars)) }
        throw TextError(.badTokenizer, file: file, "pattern is neither {\"String\": …} nor {\"Regex\": …}")
    }

    /// Non-overlapping leftmost matches as scalar offsets into `scalars`.
    func matches(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        guard !scalars.isEmpty else { return [] }
        switch self {
        case .literal(let p):
            guard !p.isEmpty, p.count <= scalars.count else { return [] }
            var out: [Range<Int>] = []
            var i = 0
            while i + p.count <= scalars.count {
                var hit = true
                for j in 0..<p.count where scalars[i + j] != p[j] { hit = false; break }
                if hit { out.append(i..<(i + p.count)); i += p.count } else { i += 1 }
            }
            return out
        case .regex(let re):
            let s = String(String.UnicodeScalarView(scalars))
            let ns = s as NSString
            // UTF-16 offset → scalar offset
            var scalarAt = [Int](repeating: 0, count: ns.length + 1)
            var u16 = 0
            for (k, u) in scalars.enumerated() {
                let w = u.value > 0xFFFF ? 2 : 1
                for t in 0..<w { scalarAt[u16 + t] = k }
                u16 += w
            }
            scalarAt[u16] = scalars.count
            return re.matches(in: s, range: NSRange(location: 0, length: ns.length)).compactMap { m in
                guard m.range.length > 0 else { return nil }
                return scalarAt[m.range.location]..<scalarAt[m.range.location + m.range.length]
            }
        }
    }

    func replace(in s: String, with content: String) -> String {
        let scalars = Array(s.unicodeScalars)
        let found = matches(scalars)
        guard !found.isEmpty else { return s }
        var out = String.UnicodeScalarView()
        var prev = 0
        for r in found {
            out.append(contentsOf: scalars[prev..<r.lowerBound])
            out.append(contentsOf: content.unicodeScalars)
            prev = r.upperBound
        }
        out.append(contentsOf: scalars[prev...])
        return String(out)
    }
}
