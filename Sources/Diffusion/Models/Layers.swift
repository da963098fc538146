import Tensor
import Weights

// Parameter groups of the model components, read from a `WeightStore` by diffusers state_dict
// name and checked against the shapes the config implies. Forward passes call the Tensor kernels.

/// Reads `name` (or the first present of `aliases`, for legacy key names) and checks its shape.
/// `alternateShapes` are also accepted (e.g. `[c, c, 1, 1]` conv-shaped attention weights).
func loadWeight(
    _ store: WeightStore, _ name: String, shape: [Int], alternateShapes: [[Int]] = [], aliases: [String] = []
) throws -> WeightView {
    try loadChecked(store, name, shape: shape, alternateShapes: alternateShapes, aliases: aliases, read: store.weight, shapeOf: \.shape)
}

/// `loadWeight` for a matrix a layer multiplies by: a `WeightMatrix`, 16-bit when the store serves it so.
func loadMatrix(
    _ store: WeightStore, _ name: String, shape: [Int], alternateShapes: [[Int]] = [], aliases: [String] = []
) throws -> WeightMatrix {
    try loadChecked(store, name, shape: shape, alternateShapes: alternateShapes, aliases: aliases, read: store.matrix, shapeOf: \.shape)
}

private func loadChecked<T>(
    _ store: WeightStore, _ name: String, shape: [Int], alternateShapes: [[Int]], aliases: [String],
    read: (String) throws -> T, shapeOf: (T) -> [Int]
) throws -> T {
    guard let present = ([name] + aliases).first(where: { store.contains($0) }) else {
        throw ModelError(.missingWeight, "weight \(name) \(shape) is missing from the model files")
    }
    let value = try read(present)
    guard shapeOf(value) == shape || alternateShapes.contains(shapeOf(value)) else {
        throw ModelError(.weightShape, "weight \(present) has shape \(shapeOf(value)), the config expects \(shape)")
    }
    return value
}

/// torch `Linear(in, out)`: weight `[out, in]` (float32, bf16/fp16 widened per block of output rows, or int8 with
/// per-row scales: Tensor `linear(int8:)`), bias `[out]`.
struct LinearLayer: Sendable {
    let weight: WeightMatrix
    let bias: WeightView?
    let inFeatures: Int
    let outFeatures: Int

    /// `prefix` names the module (e.g. `transformer_blocks.0.attn1.to_q`); `legacyPrefixes` are older names.
    init(_ store: WeightStore, _ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool = true,
         acceptConvShape: Bool = false, legacyPrefixes: [String] = []) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try loadMatrix(store, prefix + ".weight", shape: [outFeatures, inFeatures],
                                alternateShapes: acceptConvShape ? [[outFeatures, inFeatures, 1, 1]] : [],
                                aliases: legacyPrefixes.map { $0 + ".weight" })
        self.bias = bias
            ? try loadWeight(store, prefix + ".bias", shape: [outFeatures], aliases: legacyPrefixes.map { $0 + ".bias" })
            : nil
    }

    /// A 1×1 convolution's weight `[out, in, 1, 1]` read as the linear layer it is on channels-last rows.
    init(pointwise conv: PointwiseConvLayer) {
        weight = conv.weight
        bias = conv.bias
        inFeatures = conv.inChannels
        outFeatures = conv.outChannels
    }

    // x: [M, in] -> y: [M, out]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int) {
        callAsFunction(y, x, rows: rows, items: 1)
    }

    /// Per batch item (`rows` split into `items` equal parts): an item's rows come from the very calls they would
    /// get alone, so its result does not depend on its batch-mates (OpenBLAS's bits for a row can depend on how
    /// many rows share the call). A float32 weight runs in single-threaded tiles of (item, block of output columns)
    /// spread over the cores (Tensor `linearTiles`; `DARKROOM_LINEAR_TILES=off`: one multi-threaded sgemm per item).
    /// A 16-bit weight is widened 128 output rows at a time into a scratch block (Tensor `linear(half:)`), the same
    /// blocks whatever the batch. `epilogue` (SiLU, GELU-tanh) is applied to the output: per tile in the float32
    /// tiles, as one more pass elsewhere — the same values.
    // x: [items, M/items, in] -> y: [items, M/items, out]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, items: Int,
                        epilogue: LinearEpilogue = .none) {
        let per = rows / max(items, 1)
        if case .float(let w) = weight, linearTilesEnabled {
            linearTiles(y, x, w.pointer, bias?.pointer, rows: per * items, inFeatures: inFeatures, outFeatures: outFeatures,
                        groupRows: max(per, 1), threads: kernelThreads, epilogue: epilogue)
            return
        }
        defer {
            switch epilogue {
            case .none: break
            case .silu: silu(y, y, count: per * items * outFeatures)
            case .geluTanh: geluTanh(y, y, count: per * items * outFeatures)
            }
        }
        switch weight {
        case .float(let w):
            for item in 0..<items {
                linear(y + item * per * outFeatures, x + item * per * inFeatures, w.pointer, bias?.pointer, rows: per,
                       inFeatures: inFeatures, outFeatures: outFeatures)
            }
        case .half, .int8:
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: halfLinearScratchCount(inFeatures: inFeatures))
            defer { scratch.deallocate() }
            if case .half(let w) = weight {
                linear(y, x, half: w, bias?.pointer, rows: per * items, inFeatures: inFeatures, outFeatures: outFeatures,
                       scratch: scratch, threads: kernelThreads, groupRows: max(per, 1))
            } else if case .int8(let w) = weight {
                linear(y, x, int8: w, bias?.pointer, rows: per * items, inFeatures: inFeatures, outFeatures: outFeatures,
                       scratch: scratch, threads: kernelThreads, groupRows: max(per, 1))
            }
        }
    }
}

/// torch `Conv2d(in, out, k)`: weight `[out, in, k, k]`, bias `[out]`. The weight is held as the store serves it:
/// float32, or 16-bit (a model loaded at `precision = "bf16"`/`"fp16"`, or a file storing it so), convolved through
/// oneDNN's bf16 kernel or widened per call (Tensor `conv2d(half:)`).
struct Conv2dLayer: Sendable {
    let weight: WeightMatrix
    let bias: WeightView?
    let inChannels: Int
    let outChannels: Int
    let kernel: Int

    init(_ store: WeightStore, _ prefix: String, in inChannels: Int, out outChannels: Int, kernel: Int,
         bias: Bool = true) throws {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        let name = prefix + ".weight"
        let w = try loadMatrix(store, name, shape: [outChannels, inChannels, kernel, kernel])
        // int8 is a format for linear layers only (`models quantize` never writes a 4-D one): served dequantized.
        if case .int8 = w { weight = .float(try store.weight(name)) } else { weight = w }
        self.bias = bias ? try loadWeight(store, prefix + ".bias", shape: [outChannels]) : nil
    }

    /// Same-size geometry (stride 1, padding k/2 on every side) for an input of `height × width`.
    func same(height: Int, width: Int) -> Conv2dGeometry {
        Conv2dGeometry(inChannels: inChannels, outChannels: outChannels, height: height, width: width,
                       kernel: kernel, padding: kernel / 2)
    }

    /// Scratch floats a call with geometry `g` needs.
    func scratchCount(_ g: Conv2dGeometry) -> Int {
        if case .half(let w) = weight { return g.scratchCount(half: w.format) }
        return g.scratchCount()
    }

    /// `y = conv(x) + b` (with `accumulate`, `y += conv(x) + b`); scratch: ≥ `scratchCount(g)` floats.
    // x: [B, in, H, W] -> y: [B, out, Ho, Wo]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, geometry g: Conv2dGeometry,
                        scratch: UnsafeMutablePointer<Float>, scratchCount: Int, accumulate: Bool = false) {
        switch weight {
        case .float(let w):
            conv2d(y, x, w.pointer, bias?.pointer, batch: batch, geometry: g, scratch: scratch, scratchCount: scratchCount,
                   accumulate: accumulate)
        case .half(let w):
            conv2d(y, x, half: w, bias?.pointer, batch: batch, geometry: g, scratch: scratch, scratchCount: scratchCount,
                   accumulate: accumulate)
        case .int8:
            preconditionFailure("Conv2dLayer: int8 weights are dequantized at load")
        }
    }
}

extension Conv2dLayer {
    /// The oneDNN kernel (and the weight it reads) a call with geometry `g` runs through, nil where it takes our own
    /// kernels: the float32 weight where `g.prefersDNNL`, a bf16 one where `g.prefersBF16DNNL` — the choices
    /// `callAsFunction` makes, for callers that run the convolution a row strip at a time (`ConvScratch`).
    func dnnlKernel(_ g: Conv2dGeometry) -> (DNNLConvolution, UnsafeRawPointer)? {
        switch weight {
        case .float(let w): return g.prefersDNNL.map { ($0, UnsafeRawPointer(w.pointer)) }
        case .half(let w): return g.prefersBF16DNNL(w.format) ? (.directBF16, UnsafeRawPointer(w.pointer)) : nil
        case .int8: return nil
        }
    }
}

/// torch `Conv2d(C, C, k, padding=k//2, groups=C)`: weight `[C, 1, k, k]` (float32: small, and read tap by tap by
/// the depthwise kernels), bias `[C]`.
struct DepthwiseConv2dLayer: Sendable {
    let weight: WeightView
    let bias: WeightView?
    let channels: Int
    let kernel: Int

    init(_ store: WeightStore, _ prefix: String, channels: Int, kernel: Int, bias: Bool = true) throws {
        self.channels = channels
        self.kernel = kernel
        weight = try loadWeight(store, prefix + ".weight", shape: [channels, 1, kernel, kernel])
        self.bias = bias ? try loadWeight(store, prefix + ".bias", shape: [channels]) : nil
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

/// torch `Conv2d(in, out, 1)`: weight `[out, in, 1, 1]` (float32, or bf16/fp16 widened / int8 dequantized per
/// block of 128 output channels), bias `[out]`. A pointwise convolution is the matrix product `W · X` per image.
struct PointwiseConvLayer: Sendable {
    let weight: WeightMatrix
    let bias: WeightView?
    let inChannels: Int
    let outChannels: Int

    init(_ store: WeightStore, _ prefix: String, in inChannels: Int, out outChannels: Int, bias: Bool = true) throws {
        self.inChannels = inChannels
        self.outChannels = outChannels
        weight = try loadMatrix(store, prefix + ".weight", shape: [outChannels, inChannels, 1, 1])
        self.bias = bias ? try loadWeight(store, prefix + ".bias", shape: [outChannels]) : nil
    }

    // x: [B, C, S] -> y: [B, O, S]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, spatial s: Int) {
        let c = inChannels, o = outChannels
        switch weight {
        case .float(let w):
            conv2d(y, x, w.pointer, bias?.pointer, batch: batch,
                   geometry: Conv2dGeometry(inChannels: c, outChannels: o, height: 1, width: s, kernel: 1, padding: 0),
                   scratch: nil, scratchCount: 0)
        case .half, .int8:
            var beta: Float = 0
            if let b = bias?.pointer {
                for item in 0..<batch { for k in 0..<o { (y + (item * o + k) * s).update(repeating: b[k], count: s) } }
                beta = 1
            }
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: halfLinearBlockRows * c)
            defer { scratch.deallocate() }
            var o0 = 0
            while o0 < o {   // widen 128 output channels, then one sgemm per image: [rows, C] · [C, S]
                let rows = min(halfLinearBlockRows, o - o0)
                if case .half(let w) = weight { widen(scratch, w.pointer + o0 * c, count: rows * c, format: w.format) }
                if case .int8(let w) = weight { dequantizeRows(scratch, w.pointer + o0 * c, w.scales + o0, rows: rows, columns: c) }
                for item in 0..<batch {
                    sgemm(transA: false, transB: false, m: rows, n: s, k: c, alpha: 1, scratch, lda: c,
                          x + item * c * s, ldb: s, beta: beta, y + (item * o + o0) * s, ldc: s)
                }
                o0 += rows
            }
        }
    }
}
