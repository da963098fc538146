// Prompt embeddings cached by (model, prompt, max length, instruction): many producers send one prompt with many
// seeds, and the text encoder is the same work each time. LRU under a byte budget (config `text.cache_mb`).
import Core
import Foundation
import Tensor

/// An LRU cache of one prompt's encoder output (`[N, H]` hidden states and its `[N]` mask).
public final class PromptCache: Sendable {
    /// Keys compare prompts by their UTF-8 bytes (Swift String equality would merge "é" and "e\u{301}", which
    /// tokenize differently).
    public struct Key: Hashable, Sendable {
        public let model: String
        public let prompt: [UInt8]
        public let maxLength: Int
        public let instruction: [UInt8]

        public init(model: String, prompt: String, maxLength: Int, instruction: String = "") {
            self.model = model
            self.prompt = Array(prompt.utf8)
            self.maxLength = maxLength
            self.instruction = Array(instruction.utf8)
        }

        var bytes: Int { model.utf8.count + prompt.count + instruction.count + 64 }
    }

    public struct Entry: Sendable, Equatable {
        /// `[N, H]`
        public let hidden: Tensor
        /// `[N]`, 1 = token
        public let mask: [Int]
        public var bytes: Int { 4 * hidden.count + 8 * mask.count }

        public init(hidden: Tensor, mask: [Int]) {
            self.hidden = hidden
            self.mask = mask
        }
    }

    public struct Stats: Sendable, Equatable {
        public var hits = 0
        public var misses = 0
        public var evictions = 0
        public var entries = 0
        public var bytes = 0
    }

    private struct State {
        var entries: [Key: (entry: Entry, lastUse: UInt64)] = [:]
        var clock: UInt64 = 0
        var stats = Stats()
    }

    /// Budget in bytes; 0 disables the cache (every lookup misses, nothing is kept).
    public let budget: Int
    private let state = Locked(State())

    public init(budgetBytes: Int) { budget = max(0, budgetBytes) }

    /// `text.cache_mb` MiB.
    public convenience init(megabytes: Int) { self.init(budgetBytes: megabytes << 20) }

    public var stats: Stats { state.withLock { $0.stats } }

    /// The entry for `key` (counts a hit or a miss).
    public func lookup(_ key: Key) -> Entry? {
        state.withLock { s in
            s.clock += 1
            guard let found = s.entries[key] else { s.stats.misses += 1; return nil }
            s.entries[key]!.lastUse = s.clock
            s.stats.hits += 1
            return found.entry
        }
    }

    /// Keeps `entry`, evicting the least recently used entries beyond the budget. An entry larger than the whole
    /// budget is not kept.
    public func insert(_ key: Key, _ entry: Entry) {
        let size = entry.bytes + key.bytes
        guard size <= budget else { return }
        state.withLock { s in
            s.clock += 1
            if let old = s.entries[key] { s.stats.bytes -= old.entry.bytes + key.bytes }
            s.entries[key] = (entry, s.clock)
            s.stats.bytes += size
            while s.stats.bytes > budget, let victim = s.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                s.entries[victim.key] = nil
                s.stats.bytes -= victim.value.entry.bytes + victim.key.bytes
                s.stats.evictions += 1
            }
            s.stats.entries = s.entries.count
        }
    }
}

/// Tokenizer + text encoder + prompt cache: what a pipeline calls to turn prompts into embeddings.
public final class PromptEncoder: Sendable {
    public let model: String
    public let tokenizer: Tokenizer
    public let encoder: TextEncoder
    public let cache: PromptCache
    /// Where hits and misses are reported (one line per call), e.g. the worker's logger.
    let log: @Sendable (String) -> Void

    public init(model: String, tokenizer: Tokenizer, encoder: TextEncoder, cache: PromptCache,
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.model = model
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.cache = cache
        self.log = log
    }

    /// Hidden states `[B, maxLength, H]` and masks of `instruction + prompt` for each prompt, padded to
    /// `maxLength` on the tokenizer's side and truncated; cached prompts are not encoded again, the others are
    /// encoded as one batch (a row does not depend on its batch-mates, so cached and fresh rows agree).
    public func encode(_ prompts: [String], maxLength: Int, instruction: String = "", threads: Int = kernelThreads) throws -> (hidden: Tensor, mask: [[Int]]) {
        let keys = prompts.map { PromptCache.Key(model: model, prompt: $0, maxLength: maxLength, instruction: instruction) }
        var found = keys.map { cache.lookup($0) }
        let missing = found.indices.filter { found[$0] == nil }
        if !missing.isEmpty {
            let batch = try tokenizer.encode(missing.map { instruction + prompts[$0] }, maxLength: maxLength)
            let hidden = try encoder.encode(batch, threads: threads)
            let rowCount = maxLength * encoder.hiddenSize
            for (row, i) in missing.enumerated() {
                let entry = PromptCache.Entry(
                    hidden: Tensor(shape: [maxLength, encoder.hiddenSize], data: Array(hidden.data[(row * rowCount)..<((row + 1) * rowCount)])),
                    mask: batch.mask[row])
                cache.insert(keys[i], entry)
                found[i] = entry
            }
        }
        let s = cache.stats
        log("prompt cache \(model): \(prompts.count - missing.count) hit(s), \(missing.count) miss(es); \(s.entries) entries, \(s.bytes >> 10) KiB of \(cache.budget >> 10) KiB")
        let entries = found.map { $0! }
        return (Tensor(shape: [prompts.count, maxLength, encoder.hiddenSize], data: entries.flatMap(\.hidden.data)),
                entries.map(\.mask))
    }
}
