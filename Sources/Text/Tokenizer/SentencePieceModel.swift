// A SentencePiece model file (`spiece.model`, the ModelProto protobuf of google/sentencepiece
// src/sentencepiece_model.proto) as PixArt's `tokenizer/` folders ship it, with no tokenizer.json. Read into the
// tokenizer.json that transformers 5.24 builds from it when it loads such a folder as a T5Tokenizer
// (models/t5/tokenization_t5.py): Unigram over the pieces and scores, Precompiled charsmap normalizer,
// WhitespaceSplit + Metaspace (prepend always), `$A </s>`, <pad>/</s>/<unk> and the `extra_ids` <extra_id_N>
// added tokens counting down from the top id (<extra_id_0> is the last), as T5 numbers them.
import Foundation
import Weights

struct SentencePieceModel {
    struct Piece { var text = ""; var score: Float = 0; var type = 1 }

    var pieces: [Piece] = []
    var modelType = 1          // 1 unigram, 2 BPE
    var unkID = 0, bosID = 1, eosID = 2, padID = -1
    var byteFallback = false
    var charsmap: [UInt8] = []

    init(_ bytes: [UInt8], file: String) throws {
        var r = ProtoReader(data: bytes[...], file: file)
        while let (field, wire) = try r.key() {
            switch (field, wire) {
            case (1, 2):
                var p = ProtoReader(data: try r.bytes(), file: file)
                var piece = Piece()
                while let (f, w) = try p.key() {
                    switch (f, w) {
                    case (1, 2): piece.text = String(decoding: try p.bytes(), as: UTF8.self)
                    case (2, 5): piece.score = Float(bitPattern: try p.fixed32())
                    case (3, 0): piece.type = Int(try p.varint())
                    default: try p.skip(w)
                    }
                }
                pieces.append(piece)
            case (2, 2):
                var t = ProtoReader(data: try r.bytes(), file: file)
                while let (f, w) = try t.key() {
                    switch (f, w) {
                    case (3, 0): modelType = Int(try t.varint())
                    case (35, 0): byteFallback = try t.varint() != 0
                    case (40, 0): unkID = Int(Int32(truncatingIfNeeded: try t.varint()))
                    case (41, 0): bosID = Int(Int32(truncatingIfNeeded: try t.varint()))
                    case (42, 0): eosID = Int(Int32(truncatingIfNeeded: try t.varint()))
                    case (43, 0): padID = Int(Int32(truncatingIfNeeded: try t.varint()))
                    default: try t.skip(w)
                    }
                }
            case (3, 2):
                var n = ProtoReader(data: try r.bytes(), file: file)
                while let (f, w) = try n.key() {
                    if (f, w) == (2, 2) { charsmap = Array(try n.bytes()) } else { try n.skip(w) }
                }
            default:
                try r.skip(wire)
            }
        }
        guard !pieces.isEmpty else { throw TextError(.badTokenizer, file: file, "no pieces: not a SentencePiece model") }
        guard (0..<pieces.count).contains(unkID) else {
            throw TextError(.badTokenizer, file: file, "unk_id \(unkID) is outside the \(pieces.count) pieces")
        }
    }

    /// The tokenizer.json transformers makes of a T5 SentencePiece model with `extraIDs` sentinel tokens.
    func t5Spec(extraIDs: Int, file: String) throws -> [String: JSONValue] {
        guard modelType == 1 else {
            throw TextError(.unsupported, file: file, "a SentencePiece \(modelType == 2 ? "BPE" : "type \(modelType)") model without tokenizer.json is not supported (T5's Unigram spiece.model is)")
        }
        guard (0..<pieces.count).contains(eosID) else {
            throw TextError(.badTokenizer, file: file, "eos_id \(eosID) is outside the \(pieces.count) pieces")
        }
        func added(_ content: String, _ id: Int, special: Bool) -> JSONValue {
            .object(["id": .int(Int64(id)), "content": .string(content), "single_word": .bool(false), "lstrip": .bool(false),
                     "rstrip": .bool(false), "normalized": .bool(false), "special": .bool(special)])
        }
        var addedTokens: [JSONValue] = []
        for (id, p) in pieces.enumerated() where p.type == 2 || p.type == 3 || p.type == 4 {
            addedTokens.append(added(p.text, id, special: p.type != 4))
        }
        for i in 0..<extraIDs { addedTokens.append(added("<extra_id_\(i)>", pieces.count + extraIDs - 1 - i, special: true)) }
        let eos = pieces[eosID].text
        return [
            "model": .object([
                "type": .string("Unigram"), "unk_id": .int(Int64(unkID)), "byte_fallback": .bool(byteFallback),
                "vocab": .array(pieces.map { .array([.string($0.text), .double(Double($0.score))]) }),
            ]),
            "normalizer": charsmap.isEmpty ? .null
                : .object(["type": .string("Precompiled"), "precompiled_charsmap": .string(Data(charsmap).base64EncodedString())]),
            "pre_tokenizer": .object(["type": .string("Sequence"), "pretokenizers": .array([
                .object(["type": .string("WhitespaceSplit")]),
                .object(["type": .string("Metaspace"), "replacement": .string("▁"), "prepend_scheme": .string("always"), "split": .bool(true)]),
            ])]),
            "post_processor": .object([
                "type": .string("TemplateProcessing"),
                "single": .array([.object(["Sequence": .object(["id": .string("A"), "type_id": .int(0)])]),
                                  .object(["SpecialToken": .object(["id": .string(eos), "type_id": .int(0)])])]),
                "special_tokens": .object([eos: .object(["id": .string(eos), "ids": .array([.int(Int64(eosID))]), "tokens": .array([.string(eos)])])]),
            ]),
            "added_tokens": .array(addedTokens),
        ]
    }
}

/// Protocol-buffer wire format, the parts a ModelProto uses.
struct ProtoReader {
    var data: ArraySlice<UInt8>
    let file: String

    private func truncated() -> TextError { TextError(.badTokenizer, file: file, "truncated or corrupt SentencePiece model") }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard let b = data.popFirst(), shift < 64 else { throw truncated() }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }

    /// (field number, wire type), nil at the end.
    mutating func key() throws -> (Int, Int)? {
        guard !data.isEmpty else { return nil }
        let k = try varint()
        return (Int(k >> 3), Int(k & 7))
    }

    mutating func bytes() throws -> ArraySlice<UInt8> {
        let n = try varint()
        guard n <= UInt64(data.count) else { throw truncated() }
        let out = data.prefix(Int(n))
        data = data.dropFirst(Int(n))
        return out
    }

    mutating func fixed32() throws -> UInt32 {
        guard data.count >= 4 else { throw truncated() }
        let b = Array(data.prefix(4))
        data = data.dropFirst(4)
        return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
    }

    mutating func skip(_ wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1: guard data.count >= 8 else { throw truncated() }; data = data.dropFirst(8)
        case 2: _ = try self.bytes()
        case 5: _ = try fixed32()
        default: throw truncated()
        }
    }
}
