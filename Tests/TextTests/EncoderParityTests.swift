import Foundation
import Testing
import Tensor
import Weights
@testable import Text

/// Random small Gemma2Model / T5EncoderModel checkpoints (float32, bf16 sharded, float16 sharded) and their last
/// hidden states from transformers 5.24 (tools/reference/make_encoder_fixtures.py).
enum EncoderFixtures {
    static let root = TextFixtures.root.appendingPathComponent("encoders")
    static let expected = try! SafeTensorsFile(url: root.appendingPathComponent("expected.safetensors"))
    static var models: [[String: Any]] {
        try! TextFixtures.json(root.appendingPathComponent("manifest.json"))["models"] as! [[String: Any]]
    }

    static func tensor(_ name: String) -> (shape: [Int], values: [Float]) {
        let w = try! expected.weight(name)
        return withExtendedLifetime(w) { (w.shape, Array(w.buffer)) }
    }

    /// ids and mask of a stored batch (saved as float32).
    static func batch(_ key: String) -> TokenBatch {
        let ids = tensor(key + "/input_ids"), mask = tensor(key + "/attention_mask")
        let n = ids.shape[1]
        let rows = (0..<ids.shape[0]).map { b in ids.values[(b * n)..<((b + 1) * n)].map { Int($0) } }
        let masks = (0..<ids.shape[0]).map { b in mask.values[(b * n)..<((b + 1) * n)].map { Int($0) } }
        return TokenBatch(ids: rows, mask: masks)
    }
}

/// max |a − b| / max(1, |b|) over every element
func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { m, p in max(m, abs(p.0 - p.1) / max(1, abs(p.1))) }
}

@Suite struct EncoderParityTests {
    @Test(arguments: ["gemma2-f32", "gemma2-bf16", "t5-f32", "t5-f16"])
    func lastHiddenStateMatchesTransformers(name: String) throws {
        let entry = EncoderFixtures.models.first { $0["name"] as? String == name }!
        let encoder = try TextEncoder(folder: EncoderFixtures.root.appendingPathComponent(name))
        #expect(encoder.architecture == entry["class"] as? String)
        let tokenizer = try Tokenizer(folder: TextFixtures.tokenizers.appendingPathComponent(entry["tokenizer"] as! String))
        for case let b as [String: Any] in entry["batches"] as! [Any] {
            let key = b["key"] as! String
            let stored = EncoderFixtures.batch(key)
            // The fixture's ids are what our tokenizer gives for its prompts.
            let ours = try tokenizer.encode(b["prompts"] as! [String], maxLength: b["max_length"] as? Int,
                                            side: PaddingSide(rawValue: b["side"] as! String))
            #expect(ours == stored, "\(key): tokenizer")
            let want = EncoderFixtures.tensor(key + "/last_hidden_state")
            let got = try encoder.encode(stored, threads: 2)
            #expect(got.shape == want.shape)
            let err = maxRelativeError(got.data, want.values)
            // transformers computes in float32 on the upcast weights; a bf16 checkpoint on a CPU with bf16 dot
            // products multiplies bf16-rounded activations (Tensor `linearBF16DotProducts`): 8-bit mantissas.
            let limit: Float = name.hasSuffix("-bf16") && bf16DotProductsEnabled && DNNL.hasBF16DotProducts ? 2e-2 : 1e-5
            #expect(err <= limit, "\(key): max relative error \(err), limit \(limit)")
            print("encoder parity \(key): \(got.shape), max relative error \(err)")
        }
    }

    /// A row's hidden states do not depend on its batch-mates or on the thread count.
    @Test(arguments: ["gemma2-bf16", "t5-f32"])
    func independentOfBatchAndThreads(name: String) throws {
        let encoder = try TextEncoder(folder: EncoderFixtures.root.appendingPathComponent(name))
        let batch = EncoderFixtures.batch("\(name)/0")
        let all = try encoder.encode(batch, threads: 2)
        for threads in [1, 2] {
            let one = try encoder.encode(TokenBatch(ids: [batch.ids[2]], mask: [batch.mask[2]]), threads: threads)
            let row = Array(all.data[(2 * one.count)..<(3 * one.count)])
            #expect(one.data == row, "row 2 alone on \(threads) threads vs in the batch: max relative difference \(maxRelativeError(one.data, row))")
        }
    }

    @Test func badIdsAreRefused() throws {
        let encoder = try TextEncoder(folder: EncoderFixtures.root.appendingPathComponent("t5-f32"))
        #expect(throws: TextError.self) { try encoder.encode(TokenBatch(ids: [[1, 99_999]], mask: [[1, 1]])) }
        #expect(throws: TextError.self) { try encoder.encode(TokenBatch(ids: [[1, 2], [3]], mask: [[1, 1], [1]])) }
        #expect(throws: TextError.self) { try encoder.encode(TokenBatch(ids: [], mask: [])) }
    }
}
