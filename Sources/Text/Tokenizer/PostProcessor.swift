// Post-processor `TemplateProcessing` of tokenizer.json (tokenizers tokenizers/src/processors/template.rs): the
// single-sequence template, e.g. `<bos> $A` (Gemma) or `$A </s>` (T5), adds its special tokens' ids around the
// sequence. Pair templates are parsed for validation only: the pipelines encode single prompts.
import Weights

struct TemplateProcessor: Sendable {
    enum Item: Sendable { case sequence, special([Int]) }
    let single: [Item]

    /// Ids the template adds to one sequence.
    var addedCount: Int {
        single.reduce(0) { n, item in if case .special(let ids) = item { return n + ids.count } else { return n } }
    }

    static func parse(_ v: JSONValue, file: String) throws -> TemplateProcessor? {
        if v.isNull { return nil }
        guard let o = v.objectValue, let type = o["type"]?.stringValue else {
            throw TextError(.badTokenizer, file: file, "post_processor without a type")
        }
        guard type == "TemplateProcessing" else {
            throw TextError(.unsupported, file: file, "post_processor type \(type) is not supported (supported: TemplateProcessing)")
        }
        guard let single = o["single"]?.arrayValue, let specials = o["special_tokens"]?.objectValue else {
            throw TextError(.badTokenizer, file: file, "TemplateProcessing needs single and special_tokens")
        }
        let items: [Item] = try single.map { piece in
            if piece.objectValue?["Sequence"] != nil { return .sequence }
            guard let name = piece.objectValue?["SpecialToken"]?.objectValue?["id"]?.stringValue else {
                throw TextError(.badTokenizer, file: file, "TemplateProcessing item is neither Sequence nor SpecialToken")
            }
            guard let ids = specials[name]?.objectValue?["ids"]?.arrayValue?.compactMap(\.intValue) else {
                throw TextError(.badTokenizer, file: file, "TemplateProcessing special token \(name) has no ids in special_tokens")
            }
            return .special(ids)
        }
        return TemplateProcessor(single: items)
    }

    func apply(_ ids: [Int]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(ids.count + addedCount)
        for item in single {
            switch item {
            case .sequence: out += ids
            case .special(let s): out += s
            }
        }
        return out
    }
}
