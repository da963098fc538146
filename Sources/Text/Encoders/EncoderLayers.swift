// Pieces both text encoders are built from: a projection over float32 or 16-bit weights, a norm weight, the
// weight-folder opener, and the config reader.
import Foundation
import Tensor
import Weights

/// torch `nn.Linear(bias=False)` over a stored matrix `[out, in]`: float32 straight from the mapping, 16-bit
/// widened per block (Tensor `linear(half:)`).
struct Projection {
    let weight: WeightMatrix
    let inFeatures: Int
    let outFeatures: Int

    init(_ store: WeightStore, _ name: String, in k: Int, out o: Int) throws {
        weight = try store.matrix(name)
        guard weight.shape == [o, k] else {
            throw TextError(.badWeights, "\(name) has shape \(weight.shape), the config says [\(o), \(k)]")
        }
        inFeatures = k
        outFeatures = o
    }

    /// One sgemm per batch item (`tokens` rows each): OpenBLAS gives other bits for other row counts, and a
    /// prompt's embedding must not depend on its batch-mates.
    // x: [B·N, K], scratch: halfLinearScratchCount(K) -> y: [B·N, O]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows m: Int, tokens n: Int,
                        scratch: UnsafeMutablePointer<Float>, threads: Int) {
        let k = inFeatures, o = outFeatures
        switch weight {
        case .float(let w):
            var r0 = 0
            while r0 < m {
                linear(y + r0 * o, x + r0 * k, w.pointer, nil, rows: min(n, m - r0), inFeatures: k, outFeatures: o)
                r0 += n
            }
        case .half(let w):
            linear(y, x, half: w, nil, rows: m, inFeatures: k, outFeatures: o, scratch: scratch, threads: threads, groupRows: n)
        case .int8(let w):
            linear(y, x, int8: w, nil, rows: m, inFeatures: k, outFeatures: o, scratch: scratch, threads: threads, groupRows: n)
        }
    }

    var storedBytes: Int { weight.storedBytes }
}

/// The gated GELU feed-forward both encoders use: `down(gelu_tanh(gate(x)) · up(x))` (Gemma2MLP,
/// modeling_gemma2.py lines 69-82; T5DenseGatedActDense with gelu_new, modeling_t5.py lines 98-125).
struct GatedFeedForward {
    let gate, up, down: Projection

    // x: [B·N, H], g/u: [B·N, F] (work space) -> y: [B·N, H]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows m: Int, tokens n: Int,
                        g: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>,
                        scratch: UnsafeMutablePointer<Float>, threads: Int) {
        gate(g, x, rows: m, tokens: n, scratch: scratch, threads: threads)
        up(u, x, rows: m, tokens: n, scratch: scratch, threads: threads)
        geluTanh(g, g, count: m * gate.outFeatures)
        multiply(g, g, u, count: m * gate.outFeatures)
        down(y, g, rows: m, tokens: n, scratch: scratch, threads: threads)
    }
}

/// A float32 copy (or mapping) of a 1-D or 2-D weight with its shape checked.
func vector(_ store: WeightStore, _ name: String, shape: [Int]) throws -> WeightView {
    let w = try store.weight(name)
    guard w.shape == shape else {
        throw TextError(.badWeights, "\(name) has shape \(w.shape), the config says \(shape)")
    }
    return w
}

/// Opens a transformers weight folder: `model.safetensors.index.json` (sharded) or `model.safetensors`.
public func openTextEncoderWeights(_ folder: URL) throws -> any WeightStore {
    let index = folder.appendingPathComponent("model.safetensors.index.json")
    if FileManager.default.fileExists(atPath: index.path) { return try ShardedWeights(indexURL: index) }
    let single = folder.appendingPathComponent("model.safetensors")
    guard FileManager.default.fileExists(atPath: single.path) else {
        throw TextError(.unreadable, file: folder.lastPathComponent,
                        "no model.safetensors or model.safetensors.index.json in \(folder.path)")
    }
    return try SafeTensorsFile(url: single)
}

/// Keys of a transformers config.json, read one by one with the library's defaults; errors name the file.
struct ConfigReader {
    let object: [String: JSONValue]
    let file: String

    func int(_ key: String, default d: Int? = nil) throws -> Int {
        if let v = object[key], !v.isNull {
            guard let i = v.intValue else { throw TextError(.badConfig, file: file, "\(key) is not an integer") }
            return i
        }
        guard let d else { throw TextError(.badConfig, file: file, "\(key) is missing") }
        return d
    }

    func double(_ key: String, default d: Double? = nil) throws -> Double {
        if let v = object[key], !v.isNull {
            guard let x = v.doubleValue else { throw TextError(.badConfig, file: file, "\(key) is not a number") }
            return x
        }
        guard let d else { throw TextError(.badConfig, file: file, "\(key) is missing") }
        return d
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let x = v.doubleValue else { throw TextError(.badConfig, file: file, "\(key) is not a number") }
        return x
    }

    func string(_ key: String, default d: String) throws -> String {
        guard let v = object[key], !v.isNull else { return d }
        guard let s = v.stringValue else { throw TextError(.badConfig, file: file, "\(key) is not a string") }
        return s
    }
}
