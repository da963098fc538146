import Foundation
import Testing
import Core
import Tensor
@testable import Text

@Suite struct PromptCacheTests {
    func entry(_ n: Int, _ v: Float) -> PromptCache.Entry {
        PromptCache.Entry(hidden: Tensor(shape: [n, 4], data: [Float](repeating: v, count: n * 4)), mask: [Int](repeating: 1, count: n))
    }

    @Test func leastRecentlyUsedGoesFirstUnderTheBudget() {
        // each entry: 4·16·4 + 8·16 = 384 bytes + key ≈ 450; budget for two
        let cache = PromptCache(budgetBytes: 1000)
        let a = PromptCache.Key(model: "m", prompt: "a", maxLength: 16), b = PromptCache.Key(model: "m", prompt: "b", maxLength: 16)
        let c = PromptCache.Key(model: "m", prompt: "c", maxLength: 16)
        cache.insert(a, entry(16, 1))
        cache.insert(b, entry(16, 2))
        #expect(cache.lookup(a) == entry(16, 1))   // a is now the most recent
        cache.insert(c, entry(16, 3))              // evicts b
        #expect(cache.lookup(b) == nil)
        #expect(cache.lookup(a) != nil && cache.lookup(c) != nil)
        let s = cache.stats
        #expect(s.entries == 2 && s.evictions == 1 && s.hits == 3 && s.misses == 1 && s.bytes <= 1000)
        // Keys: other max length, instruction or model are other entries; "é" and "e + U+0301" differ.
        #expect(cache.lookup(PromptCache.Key(model: "m", prompt: "a", maxLength: 17)) == nil)
        #expect(cache.lookup(PromptCache.Key(model: "m", prompt: "a", maxLength: 16, instruction: "x")) == nil)
        #expect(PromptCache.Key(model: "m", prompt: "\u{e9}", maxLength: 1) != PromptCache.Key(model: "m", prompt: "e\u{301}", maxLength: 1))
        #expect(PromptCache(budgetBytes: 0).stats.entries == 0)
    }

    @Test func encoderHitsGiveTheSameEmbeddingsAndAreLogged() throws {
        let lines = Locked<[String]>([])
        let encoder = try TextEncoder(folder: EncoderFixtures.root.appendingPathComponent("gemma2-bf16"))
        let tokenizer = try Tokenizer(folder: TextFixtures.tokenizers.appendingPathComponent("gemma"))
        let prompts = PromptEncoder(model: "gemma2-bf16", tokenizer: tokenizer, encoder: encoder,
                                    cache: PromptCache(megabytes: 1), log: { line in lines.withLock { $0.append(line) } })
        let first = try prompts.encode(["red circle", "blue square"], maxLength: 12)
        let second = try prompts.encode(["blue square", "green ring", "red circle"], maxLength: 12)
        // cached rows equal the fresh ones bit for bit
        let row = 12 * encoder.hiddenSize
        #expect(Array(second.hidden.data[(2 * row)..<(3 * row)]) == Array(first.hidden.data[0..<row]))
        #expect(Array(second.hidden.data[0..<row]) == Array(first.hidden.data[row..<(2 * row)]))
        // and equal a direct encode
        let direct = try encoder.encode(try tokenizer.encode(["green ring"], maxLength: 12))
        #expect(Array(second.hidden.data[row..<(2 * row)]) == direct.data)
        #expect(prompts.cache.stats.hits == 2 && prompts.cache.stats.misses == 3)
        let log = lines.value
        #expect(log.count == 2 && log[0].contains("0 hit(s), 2 miss(es)") && log[1].contains("2 hit(s), 1 miss(es)"), "\(log)")
    }
}
