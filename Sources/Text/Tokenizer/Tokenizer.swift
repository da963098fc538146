// A Hugging Face tokenizer read from tokenizer.json (the `tokenizers` format diffusers folders ship under
// tokenizer/), encoding as tokenizers tokenizers/src/tokenizer/mod.rs `encode_single_sequence`, `post_process`:
// added tokens → normalizer → added (normalized) tokens → pre-tokenizer → model (BPE or Unigram) per piece;
// then truncation (max length less the template's special tokens), the post-processor template, padding.
import Foundation
import Weights

public enum PaddingSide: String, Sendable { case left, right }

/// Ids and attention masks of a batch, every row `length` long when padded.
public struct TokenBatch: Sendable, Equatable {
    public var ids: [[Int]]
    public var mask: [[Int]]
    public var length: Int { ids.first?.count ?? 0 }

    public init(ids: [[Int]], mask: [[Int]]) {
        self.ids = ids
        self.mask = mask
    }
}

public final class Tokenizer: Sendable {
    enum Model: Sendable {
        case bpe(BPEModel)
        case unigram(UnigramModel)
    }

    /// File name, for messages.
    public let name: String
    /// "BPE" or "Unigram".
    public let modelType: String
    let model: Model
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: TemplateProcessor?
    let rawAdded: AddedMatcher
    let normalizedAdded: AddedMatcher
    let idToToken: [Int: String]
    /// Pad token id (tokenizer.json `padding`, else tokenizer_config.json `pad_token`), nil when there is none.
    public let padID: Int?
    /// Default padding side (tokenizer.json `padding.direction`, tokenizer_config.json `padding_side`, else
    /// the class's: left for Gemma, right otherwise).
    public let paddingSide: PaddingSide
    /// Which end truncation cuts (tokenizer.json `truncation.direction`, tokenizer_config.json
    /// `truncation_side`, else right, transformers' default).
    public let truncationSide: PaddingSide
    /// Ids in the model vocabulary plus added tokens (the largest id + 1).
    public let vocabSize: Int
    /// Added tokens (special or not), content → id.
    public let addedTokens: [String: Int]

    /// `folder` holds tokenizer.json and, optionally, tokenizer_config.json (a diffusers `tokenizer/` folder) — or,
    /// as PixArt's folders do, a T5 `spiece.model` without tokenizer.json (read as transformers converts it).
    public convenience init(folder: URL) throws {
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? configURL : nil
        let json = folder.appendingPathComponent("tokenizer.json")
        let spiece = folder.appendingPathComponent("spiece.model")
        if !FileManager.default.fileExists(atPath: json.path), FileManager.default.fileExists(atPath: spiece.path) {
            try self.init(sentencePiece: spiece, config: config)
        } else {
            try self.init(file: json, config: config)
        }
    }

    public convenience init(file: URL, config configURL: URL? = nil) throws {
        try self.init(spec: try readJSONObject(file), name: file.lastPathComponent, config: try configURL.map(readJSONObject) ?? [:])
    }

    /// A T5 SentencePiece model (`spiece.model`) with tokenizer_config.json's `extra_ids` (default 100).
    public convenience init(sentencePiece url: URL, config configURL: URL? = nil) throws {
        let name = url.lastPathComponent
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TextError(.unreadable, file: name, "cannot read \(url.path)")
        }
        let config = try configURL.map(readJSONObject) ?? [:]
        let model = try SentencePieceModel(Array(data), file: name)
        let extra = config["extra_ids"]?.intValue ?? 100
        try self.init(spec: try model.t5Spec(extraIDs: extra, file: name), name: name, config: config)
    }

    init(spec: [String: JSONValue], name: String, config configObject: [String: JSONValue]) throws {
        self.name = name
        let file = name
        guard let m = spec["model"]?.objectValue else {
            throw TextError(.badTokenizer, file: file, "no \"model\" object")
        }
        let type = m["type"]?.stringValue ?? (m["merges"] != nil ? "BPE" : m["unk_id"] != nil || m["vocab"]?.arrayValue != nil ? "Unigram" : "")
        var idToToken: [Int: String] = [:]
        switch type {
        case "BPE":
            let bpe = try BPEModel(m, file: file)
            model = .bpe(bpe)
            for (k, v) in m["vocab"]?.objectValue ?? [:] { if let id = v.intValue { idToToken[id] = k } }
        case "Unigram":
            let uni = try UnigramModel(m, file: file)
            model = .unigram(uni)
            for (id, bytes) in uni.pieces.enumerated() { idToToken[id] = String(decoding: bytes, as: UTF8.self) }
        default:
            throw TextError(.unsupported, file: file, "model type \(type.isEmpty ? "(none)" : type) is not supported (supported: BPE, Unigram)")
        }
        modelType = type
        normalizer = try Normalizer.parse(spec["normalizer"] ?? .null, file: file)
        preTokenizer = try PreTokenizer.parse(spec["pre_tokenizer"] ?? .null, file: file)
        postProcessor = try TemplateProcessor.parse(spec["post_processor"] ?? .null, file: file)

        var raw: [(pattern: [Unicode.Scalar], token: AddedToken)] = []
        var normalized: [(pattern: [Unicode.Scalar], token: AddedToken)] = []
        var added: [String: Int] = [:]
        for entry in spec["added_tokens"]?.arrayValue ?? [] {
            guard let o = entry.objectValue, let content = o["content"]?.stringValue, let id = o["id"]?.intValue else {
                throw TextError(.badTokenizer, file: file, "an added_tokens entry lacks content or id")
            }
            let token = AddedToken(content: Array(content.unicodeScalars), id: id,
                                   singleWord: o["single_word"]?.boolValue ?? false, lstrip: o["lstrip"]?.boolValue ?? false,
                                   rstrip: o["rstrip"]?.boolValue ?? false, normalized: o["normalized"]?.boolValue ?? true,
                                   special: o["special"]?.boolValue ?? false)
            if token.normalized {
                // added_vocabulary.rs: matched by its normalized form
                let form = normalizer?.normalize(content) ?? content
                normalized.append((Array(form.unicodeScalars), token))
            } else {
                raw.append((token.content, token))
            }
            added[content] = id
            idToToken[id] = content
        }
        rawAdded = AddedMatcher(raw)
        normalizedAdded = AddedMatcher(normalized)
        addedTokens = added
        self.idToToken = idToToken
        vocabSize = (idToToken.keys.max() ?? -1) + 1

        // Padding: tokenizer.json first, then tokenizer_config.json, then the class default.
        let padding = spec["padding"]?.objectValue
        var pad = padding?["pad_id"]?.intValue
        if pad == nil, let padToken = configToken(configObject["pad_token"]) {
            pad = added[padToken] ?? idToToken.first(where: { $0.value == padToken })?.key
        }
        padID = pad
        if let direction = spec["truncation"]?.objectValue?["direction"]?.stringValue {
            truncationSide = direction == "Left" ? .left : .right
        } else {
            truncationSide = PaddingSide(rawValue: configObject["truncation_side"]?.stringValue ?? "right") ?? .right
        }
        if let direction = padding?["direction"]?.stringValue {
            paddingSide = direction == "Left" ? .left : .right
        } else if let side = configObject["padding_side"]?.stringValue, let s = PaddingSide(rawValue: side) {
            paddingSide = s
        } else {
            paddingSide = (configObject["tokenizer_class"]?.stringValue ?? "").hasPrefix("Gemma") ? .left : .right
        }
    }

    /// Special tokens the post-processor adds to one sequence.
    public var specialTokenCount: Int { postProcessor?.addedCount ?? 0 }

    /// The token text of `id` (vocabulary piece or added token).
    public func token(_ id: Int) -> String? { idToToken[id] }

    /// Ids of one text, with the template's special tokens unless told otherwise; no truncation, no padding.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        let ids = encodeSequence(text)
        return addSpecialTokens ? (postProcessor?.apply(ids) ?? ids) : ids
    }

    /// What a pipeline calls: `tokenizer(texts, padding="max_length", max_length=L, truncation=True)`.
    /// - padding `.maxLength` pads every row to `maxLength`, `.longest` to the longest row, `.none` not at all.
    /// - truncation keeps the first `maxLength` ids (counting special tokens) — the last with truncation side
    ///   left.
    public enum Padding: Sendable { case none, longest, maxLength }

    public func encode(_ texts: [String], maxLength: Int?, padding: Padding = .maxLength, truncation: Bool = true,
                       addSpecialTokens: Bool = true, side: PaddingSide? = nil) throws -> TokenBatch {
        let special = addSpecialTokens ? specialTokenCount : 0
        if truncation || padding == .maxLength {
            guard let maxLength, maxLength > special else {
                throw TextError(.badInput, "max length \(maxLength.map(String.init) ?? "nil") must exceed the \(special) special tokens (and is required for truncation and max-length padding)")
            }
        }
        var rows: [[Int]] = texts.map { text in
            var ids = encodeSequence(text)
            if truncation, let maxLength, ids.count > maxLength - special {
                let cut = ids.count - (maxLength - special)
                if truncationSide == .left { ids.removeFirst(cut) } else { ids.removeLast(cut) }
            }
            return addSpecialTokens ? (postProcessor?.apply(ids) ?? ids) : ids
        }
        var masks = rows.map { [Int](repeating: 1, count: $0.count) }
        let target: Int?
        switch padding {
        case .none: target = nil
        case .longest: target = rows.map(\.count).max()
        case .maxLength: target = maxLength
        }
        if let target {
            guard let pad = padID else {
                throw TextError(.badInput, file: name, "padding asked for but the tokenizer has no pad token (tokenizer_config.json pad_token)")
            }
            let left = (side ?? paddingSide) == .left
            for i in rows.indices where rows[i].count < target {
                let n = target - rows[i].count
                if left {
                    rows[i] = [Int](repeating: pad, count: n) + rows[i]
                    masks[i] = [Int](repeating: 0, count: n) + masks[i]
                } else {
                    rows[i] += [Int](repeating: pad, count: n)
                    masks[i] += [Int](repeating: 0, count: n)
                }
            }
        }
        return TokenBatch(ids: rows, mask: masks)
    }

    /// mod.rs `encode_single_sequence` without the post-processor.
    func encodeSequence(_ text: String) -> [Int] {
        var ids: [Int] = []
        let scalars = Array(text.unicodeScalars)
        for (range, token) in rawAdded.split(scalars) {
            if let token { ids.append(token.id); continue }
            let segment = String(String.UnicodeScalarView(scalars[range]))
            let normalized = Array((normalizer?.normalize(segment) ?? segment).unicodeScalars)
            for (r, t) in normalizedAdded.split(normalized) {
                if let t { ids.append(t.id); continue }
                let piece = Piece(scalars: Array(normalized[r]), atOrigin: range.lowerBound == 0 && r.lowerBound == 0)
                let pieces = preTokenizer?.apply([piece]) ?? [piece]
                for p in pieces where !p.scalars.isEmpty {
                    switch model {
                    case .bpe(let bpe): ids += bpe.tokenize(p.scalars)
                    case .unigram(let uni): ids += uni.tokenize(p.scalars)
                    }
                }
            }
        }
        return ids
    }
}

/// A token in tokenizer_config.json: "<pad>" or {"content": "<pad>", …}.
private func configToken(_ v: JSONValue?) -> String? {
    v?.stringValue ?? v?.objectValue?["content"]?.stringValue
}

/// Reads a JSON object file; one-line errors naming the file.
func readJSONObject(_ url: URL) throws -> [String: JSONValue] {
    let name = url.lastPathComponent
    guard let data = FileManager.default.contents(atPath: url.path) else {
        throw TextError(.unreadable, file: name, "cannot read \(url.path)")
    }
    guard let value = try? JSONValue.parse(data) else {
        throw TextError(.badJSON, file: name, "not valid JSON (\(data.count) bytes; truncated or corrupt?)")
    }
    guard let object = value.objectValue else {
        throw TextError(.badJSON, file: name, "the top level is not a JSON object")
    }
    return object
}
