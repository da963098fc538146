// Cheap previews of an in-progress sample, for progress reports (no VAE run).
// Latent pipelines: a fixed linear map from SD-VAE latents to RGB — the SD 1.x `latent_rgb_factors` of
// ComfyUI (comfy/latent_formats.py, class SD15), or a model's own map (DC-AE: fitted at load by
// `TextToImagePipeline`) — applied to the sampling-space latent; output is latent-sized.
// Pixel pipelines: the sample itself, box-downscaled.

public enum Preview {
    /// Rows: latent channel; columns: R, G, B.
    static let sd15Factors: [[Float]] = [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]

    /// A small RGB preview of one sample `[C, H, W]`.
    /// - latent: true for VAE latents (4 channels use the linear map; others show channel 0 as grey);
    ///   false for pixel space (channels 0..2 are RGB in [-1, 1]).
    /// - maxSide: pixel-space previews are box-downscaled by an integer factor until both sides fit.
    /// - map: a model's own latent → RGB map, `channels + 1` rows (the last is the bias) × 3, used instead of the
    ///   SD 1.x factors (e.g. a DC-AE's, `TextToImagePipeline.previewMap`).
    public static func image(sample: [Float], channels: Int, height: Int, width: Int,
                             latent: Bool, maxSide: Int = 64, map: [[Float]]? = nil) -> RGBImage {
        let plane = height * width
        guard channels > 0, plane > 0, sample.count >= channels * plane else {
            return RGBImage(width: 0, height: 0, pixels: [])
        }
        var rgb = [Float](repeating: 0, count: 3 * plane)   // [3, H, W] in [-1, 1]
        if latent, let map, map.count == channels + 1, map.allSatisfy({ $0.count == 3 }) {
            for p in 0..<plane {
                for o in 0..<3 {
                    var acc = map[channels][o]
                    for c in 0..<channels { acc += sample[c * plane + p] * map[c][o] }
                    rgb[o * plane + p] = acc
                }
            }
        } else if latent && channels == 4 {
            for p in 0..<plane {
                for o in 0..<3 {
                    var acc: Float = 0
                    for c in 0..<4 { acc += sample[c * plane + p] * sd15Factors[c][o] }
                    rgb[o * plane + p] = acc
                }
            }
        } else if !latent && channels >= 3 {
            for i in 0..<(3 * plane) { rgb[i] = sample[i] }
        } else {
            for o in 0..<3 { for p in 0..<plane { rgb[o * plane + p] = sample[p] } }
        }
        var factor = 1
        if !latent {
            while (height / factor > maxSide || width / factor > maxSide) && factor < max(height, width) { factor *= 2 }
        }
        let oh = max(height / factor, 1), ow = max(width / factor, 1)
        var small = [Float](repeating: 0, count: 3 * oh * ow)
        for o in 0..<3 {
            for y in 0..<oh {
                for x in 0..<ow {
                    var acc: Float = 0
                    var n: Float = 0
                    for dy in 0..<factor {
                        for dx in 0..<factor {
                            let yy = y * factor + dy, xx = x * factor + dx
                            if yy < height && xx < width { acc += rgb[o * plane + yy * width + xx]; n += 1 }
                        }
                    }
                    small[o * oh * ow + y * ow + x] = n > 0 ? acc / n : 0
                }
            }
        }
        return ImageConversion.rgb8(chw: ImageConversion.unitRange(small), height: oh, width: ow)
    }
}
