import Foundation
import Testing
@testable import Text

/// Fixtures made by tools/reference/make-text-fixtures.sh (sentencepiece-trained tokenizers, ids from
/// transformers 5.24 / tokenizers 0.23.3).
enum TextFixtures {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static let tokenizers = root.appendingPathComponent("tokenizers")

    static func json(_ url: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    static let texts: [String] = {
        let cases = try! json(tokenizers.appendingPathComponent("cases.json"))
        return cases["texts"] as! [String]
    }()
}

/// Compares every row; the failure message names the first few strings that differ.
func expectSameIDs(_ got: [[Int]], _ want: [[Int]], texts: [String], _ label: String) {
    #expect(got.count == want.count, "\(label): \(got.count) rows, expected \(want.count)")
    var bad: [Int] = []
    for i in 0..<min(got.count, want.count) where got[i] != want[i] { bad.append(i) }
    let shown = bad.prefix(3).map { i in
        "#\(i) \(String(reflecting: String(texts[i].prefix(60)))): got \(Array(got[i].prefix(24))) want \(Array(want[i].prefix(24)))"
    }
    #expect(bad.isEmpty, "\(label): \(bad.count) of \(want.count) differ; \(shown.joined(separator: "; "))")
}

@Suite struct TokenizerParityTests {
    @Test(arguments: ["gemma", "t5", "t5-spiece"])
    func everyStringMatchesTransformers(name: String) throws {
        let tok = try Tokenizer(folder: TextFixtures.tokenizers.appendingPathComponent(name))
        let expected = try TextFixtures.json(TextFixtures.tokenizers.appendingPathComponent("expected-\(name).json"))
        let texts = TextFixtures.texts
        #expect(texts.count >= 5000)
        let want = expected["ids"] as! [[Int]]
        expectSameIDs(texts.map { tok.encode($0) }, want, texts: texts, "\(name) with special tokens")

        let plain = expected["ids_no_special"] as! [[Int]]
        expectSameIDs(texts.prefix(plain.count).map { tok.encode($0, addSpecialTokens: false) }, plain,
                      texts: texts, "\(name) without special tokens")

        for case let p as [String: Any] in expected["padded"] as! [Any] {
            let count = p["count"] as! Int, maxLength = p["max_length"] as! Int
            let side = PaddingSide(rawValue: p["side"] as! String)!
            let batch = try tok.encode(Array(texts.prefix(count)), maxLength: maxLength, padding: .maxLength,
                                       truncation: true, side: side)
            let label = "\(name) padded to \(maxLength) on the \(side)"
            expectSameIDs(batch.ids, p["ids"] as! [[Int]], texts: texts, label + " (ids)")
            expectSameIDs(batch.mask, p["mask"] as! [[Int]], texts: texts, label + " (mask)")
        }
    }

    @Test(arguments: ["bpe-legacy-merges", "unigram-byte-fallback", "t5-field-notes", "unigram-first-nfkc-split",
                      "unigram-never-lowercase", "bpe-added-strip-single-word"])
    func variantsMatchTokenizers(name: String) throws {
        let dir = TextFixtures.tokenizers.appendingPathComponent("variants")
        let tok = try Tokenizer(file: dir.appendingPathComponent("\(name).json"))
        let expected = try TextFixtures.json(dir.appendingPathComponent("\(name).expected.json"))
        let all = TextFixtures.texts
        let texts = Array(all.prefix(expected["count"] as! Int)) + all.suffix(expected["long"] as! Int)
        expectSameIDs(texts.map { tok.encode($0) }, expected["ids"] as! [[Int]], texts: texts, name)
    }
}

@Suite struct TokenizerOptionsTests {
    /// tokenizer_config.json's truncation_side and padding_side; .longest padding; no pad token.
    @Test func sidesAndLongestPadding() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-sides-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: TextFixtures.tokenizers.appendingPathComponent("gemma/tokenizer.json"),
                                         to: dir.appendingPathComponent("tokenizer.json"))
        try Data(#"{"pad_token": "<pad>", "padding_side": "right", "truncation_side": "left", "tokenizer_class": "GemmaTokenizer"}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tok = try Tokenizer(folder: dir)
        #expect(tok.paddingSide == .right && tok.truncationSide == .left && tok.padID == 0)
        let text = "a red circle over a blue square next to a green triangle"
        let full = tok.encode(text, addSpecialTokens: false)
        let cut = try tok.encode([text], maxLength: 5)
        #expect(cut.ids[0] == [2] + full.suffix(4))  // <bos> + the last four
        let longest = try tok.encode(["red", text], maxLength: nil, padding: .longest, truncation: false)
        #expect(longest.length == full.count + 1 && longest.mask[0].filter { $0 == 1 }.count == tok.encode("red").count)
        #expect(longest.ids[0].last == 0 && longest.mask[0].last == 0)
        #expect(throws: TextError.self) { try tok.encode([text], maxLength: 1) }  // no room beside <bos>

        try Data(#"{"tokenizer_class": "GemmaTokenizer"}"#.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let bare = try Tokenizer(folder: dir)
        #expect(bare.paddingSide == .left && bare.padID == nil)  // Gemma's class default; no pad token named
        #expect(throws: TextError.self) { try bare.encode(["red"], maxLength: 8) }
    }
}
