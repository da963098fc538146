// Resolution bins of the PixArt and Sana pipelines (diffusers 0.42.1: pipelines/pixart_alpha/pipeline_pixart_alpha.py
// ASPECT_RATIO_256/512/1024_BIN, pipeline_pixart_sigma.py ASPECT_RATIO_2048_BIN, pipelines/sana/pipeline_sana.py
// ASPECT_RATIO_4096_BIN; a test spot-checks entries of each): aspect ratio (as the dict key's text) → (height, width), in the dicts' order, which
// decides ties in `classify_height_width_bin`.

/// One bin: the key's ratio and the size generated for it.
public struct ResolutionBin: Sendable, Equatable {
    public let ratio: Double
    public let height: Int
    public let width: Int
}

public enum ResolutionBins {
    /// ASPECT_RATIO_512_BIN and ASPECT_RATIO_1024_BIN are ASPECT_RATIO_256_BIN times 2 and 4, ASPECT_RATIO_4096_BIN is
    /// ASPECT_RATIO_2048_BIN times 2 (same keys, same order; checked against diffusers when this file was written).
    public static let bins512 = scaled(bins256, 2)
    public static let bins1024 = scaled(bins256, 4)
    public static let bins4096 = scaled(bins2048, 2)

    static func scaled(_ bins: [ResolutionBin], _ k: Int) -> [ResolutionBin] {
        bins.map { ResolutionBin(ratio: $0.ratio, height: $0.height * k, width: $0.width * k) }
    }

    public static let bins256: [ResolutionBin] = [
        ResolutionBin(ratio: 0.25, height: 128, width: 512), ResolutionBin(ratio: 0.28, height: 128, width: 464),
        ResolutionBin(ratio: 0.32, height: 144, width: 448), ResolutionBin(ratio: 0.33, height: 144, width: 432),
        ResolutionBin(ratio: 0.35, height: 144, width: 416), ResolutionBin(ratio: 0.4, height: 160, width: 400),
        ResolutionBin(ratio: 0.42, height: 160, width: 384), ResolutionBin(ratio: 0.48, height: 176, width: 368),
        ResolutionBin(ratio: 0.5, height: 176, width: 352), ResolutionBin(ratio: 0.52, height: 176, width: 336),
        ResolutionBin(ratio: 0.57, height: 192, width: 336), ResolutionBin(ratio: 0.6, height: 192, width: 320),
        ResolutionBin(ratio: 0.68, height: 208, width: 304), ResolutionBin(ratio: 0.72, height: 208, width: 288),
        ResolutionBin(ratio: 0.78, height: 224, width: 288), ResolutionBin(ratio: 0.82, height: 224, width: 272),
        ResolutionBin(ratio: 0.88, height: 240, width: 272), ResolutionBin(ratio: 0.94, height: 240, width: 256),
        ResolutionBin(ratio: 1.0, height: 256, width: 256), ResolutionBin(ratio: 1.07, height: 256, width: 240),
        ResolutionBin(ratio: 1.13, height: 272, width: 240), ResolutionBin(ratio: 1.21, height: 272, width: 224),
        ResolutionBin(ratio: 1.29, height: 288, width: 224), ResolutionBin(ratio: 1.38, height: 288, width: 208),
        ResolutionBin(ratio: 1.46, height: 304, width: 208), ResolutionBin(ratio: 1.67, height: 320, width: 192),
        ResolutionBin(ratio: 1.75, height: 336, width: 192), ResolutionBin(ratio: 2.0, height: 352, width: 176),
        ResolutionBin(ratio: 2.09, height: 368, width: 176), ResolutionBin(ratio: 2.4, height: 384, width: 160),
        ResolutionBin(ratio: 2.5, height: 400, width: 160), ResolutionBin(ratio: 3.0, height: 432, width: 144),
        ResolutionBin(ratio: 4.0, height: 512, width: 128),
    ]
    public static let bins2048: [ResolutionBin] = [
        ResolutionBin(ratio: 0.25, height: 1024, width: 4096), ResolutionBin(ratio: 0.26, height: 1024, width: 3968),
        ResolutionBin(ratio: 0.27, height: 1024, width: 3840), ResolutionBin(ratio: 0.28, height: 1024, width: 3712),
        ResolutionBin(ratio: 0.32, height: 1152, width: 3584), ResolutionBin(ratio: 0.33, height: 1152, width: 3456),
        ResolutionBin(ratio: 0.35, height: 1152, width: 3328), ResolutionBin(ratio: 0.4, height: 1280, width: 3200),
        ResolutionBin(ratio: 0.42, height: 1280, width: 3072), ResolutionBin(ratio: 0.48, height: 1408, width: 2944),
        ResolutionBin(ratio: 0.5, height: 1408, width: 2816), ResolutionBin(ratio: 0.52, height: 1408, width: 2688),
        ResolutionBin(ratio: 0.57, height: 1536, width: 2688), ResolutionBin(ratio: 0.6, height: 1536, width: 2560),
        ResolutionBin(ratio: 0.68, height: 1664, width: 2432), ResolutionBin(ratio: 0.72, height: 1664, width: 2304),
        ResolutionBin(ratio: 0.78, height: 1792, width: 2304), ResolutionBin(ratio: 0.82, height: 1792, width: 2176),
        ResolutionBin(ratio: 0.88, height: 1920, width: 2176), ResolutionBin(ratio: 0.94, height: 1920, width: 2048),
        ResolutionBin(ratio: 1.0, height: 2048, width: 2048), ResolutionBin(ratio: 1.07, height: 2048, width: 1920),
        ResolutionBin(ratio: 1.13, height: 2176, width: 1920), ResolutionBin(ratio: 1.21, height: 2176, width: 1792),
        ResolutionBin(ratio: 1.29, height: 2304, width: 1792), ResolutionBin(ratio: 1.38, height: 2304, width: 1664),
        ResolutionBin(ratio: 1.46, height: 2432, width: 1664), ResolutionBin(ratio: 1.67, height: 2560, width: 1536),
        ResolutionBin(ratio: 1.75, height: 2688, width: 1536), ResolutionBin(ratio: 2.0, height: 2816, width: 1408),
        ResolutionBin(ratio: 2.09, height: 2944, width: 1408), ResolutionBin(ratio: 2.4, height: 3072, width: 1280),
        ResolutionBin(ratio: 2.5, height: 3200, width: 1280), ResolutionBin(ratio: 2.89, height: 3328, width: 1152),
        ResolutionBin(ratio: 3.0, height: 3456, width: 1152), ResolutionBin(ratio: 3.11, height: 3584, width: 1152),
        ResolutionBin(ratio: 3.62, height: 3712, width: 1024), ResolutionBin(ratio: 3.75, height: 3840, width: 1024),
        ResolutionBin(ratio: 3.88, height: 3968, width: 1024), ResolutionBin(ratio: 4.0, height: 4096, width: 1024),
    ]

    /// `classify_height_width_bin` (image_processor.py:1423-1438): the bin whose ratio is closest to height / width
    /// (the first such bin on ties).
    public static func classify(height: Int, width: Int, bins: [ResolutionBin]) -> (height: Int, width: Int) {
        let ar = Double(height) / Double(width)
        var best = bins[0]
        for bin in bins.dropFirst() where abs(bin.ratio - ar) < abs(best.ratio - ar) { best = bin }
        return (best.height, best.width)
    }
}
