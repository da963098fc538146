import Tensor
import Weights

// Parameter groups of the model components, read from a `WeightStore` by diffusers state_dict
// name and checked against the shapes the config implies. Forward passes call the Tensor kernels.

/// Reads `name` (or the first present of `aliases`, for legacy key names) and checks its shape.
/// `alternateShapes` are also accepted (e.g. `[c, c, 1, 1]` conv-shaped attention weights).
func loadWeight(
    _ store: WeightStore, _ name: String, shape: [Int], alternateShapes: [[Int]] = [], aliases: [String] = []
) throws -> WeightView {
    guard let present = ([name] + aliases).first(where: { store.contains($0) }) else {
        throw ModelError(.missingWeight, "weight \(name) \(shape) is missing from the model files")
    }
    let view = try store.weight(present)
    guard view.shape == shape || alternateShapes.contains(view.shape) else {
        throw ModelError(.weightShape, "weight \(present) has shape \(view.shape), the config expects \(shape)")
    }
    return view
}

/// torch `Linear(in, out)`: weight `[out, in]`, bias `[out]`.
struct LinearLayer: Sendable {
    let weight: WeightView
    let bias: WeightView?
    let inFeatures: Int
    let outFeatures: Int

    /// `prefix` names the module (e.g. `transformer_blocks.0.attn1.to_q`); `legacyPrefixes` are older names.
    init(_ store: WeightStore, _ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool = true,
         acceptConvShape: Bool = false, legacyPrefixes: [String] = []) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try loadWeight(store, prefix + ".weight", shape: [outFeatures, inFeatures],
                                alternateShapes: acceptConvShape ? [[outFeatures, inFeatures, 1, 1]] : [],
                                aliases: legacyPrefixes.map { $0 + ".weight" })
        self.bias = bias
            ? try loadWeight(store, prefix + ".bias", shape: [outFeatures], aliases: legacyPrefixes.map { $0 + ".bias" })
            : nil
    }

    // x: [M, in] -> y: [M, out]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int) {
        linear(y, x, weight.pointer, bias?.pointer, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    /// One sgemm per batch item (`rows` split into `items` equal parts): an item's rows then come from the very
    /// call it would get alone, so its result does not depend on its batch-mates (OpenBLAS's bits for a row
    /// can depend on how many rows share the call).
    // x: [items, M/items, in] -> y: [items, M/items, out]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, items: Int) {
        let per = rows / max(items, 1)
        for item in 0..<items {
            linear(y + item * per * outFeatures, x + item * per * inFeatures, weight.pointer, bias?.pointer, rows: per,
                   inFeatures: inFeatures, outFeatures: outFeatures)
        }
    }
}

/// torch `Conv2d(in, out, k)`: weight `[out, in, k, k]`, bias `[out]`.
struct Conv2dLayer: Sendable {
    let weight: WeightView
    let bias: WeightView?
    let inChannels: Int
    let outChannels: Int
    let kernel: Int

    init(_ store: WeightStore, _ prefix: String, in inChannels: Int, out outChannels: Int, kernel: Int,
         bias: Bool = true) throws {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        weight = try loadWeight(store, prefix + ".weight", shape: [outChannels, inChannels, kernel, kernel])
        self.bias = bias ? try loadWeight(store, prefix + ".bias", shape: [outChannels]) : nil
    }

    /// Same-size geometry (stride 1, padding k/2 on every side) for an input of `height × width`.
    func same(height: Int, width: Int) -> Conv2dGeometry {
        Conv2dGeometry(inChannels: inChannels, outChannels: outChannels, height: height, width: width,
                       kernel: kernel, padding: kernel / 2)
    }
}

/// torch `GroupNorm(groups, channels)` with affine weight/bias `[channels]`.
struct GroupNormLayer: Sendable {
    let gamma: WeightView
    let beta: WeightView
    let channels: Int
    let groups: Int
    let eps: Float

    init(_ store: WeightStore, _ prefix: String, channels: Int, groups: Int, eps: Float) throws {
        guard groups > 0, channels % groups == 0 else {
            throw ModelError(.unsupportedConfig, "\(prefix): \(channels) channels cannot be split into \(groups) groups")
        }
        self.channels = channels
        self.groups = groups
        self.eps = eps
        gamma = try loadWeight(store, prefix + ".weight", shape: [channels])
        beta = try loadWeight(store, prefix + ".bias", shape: [channels])
    }

    // x: [B, C, S] -> y: [B, C, S] (y may be x); with `silu`, SiLU(GN(x))
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, spatial: Int, silu: Bool) {
        groupNorm(y, x, gamma: gamma.pointer, beta: beta.pointer, batch: batch, channels: channels, spatial: spatial,
                  groups: groups, eps: eps, silu: silu)
    }
}
