import Tensor

/// The DiT pipeline's last step before pixels (docs/engine.md §3.4): undo the latent scaling, then decode.
/// Without a shift factor (SD/DiT VAEs) `latents · Float(1 / scaling_factor)` — the reciprocal taken in
/// Double and cast, a float32 multiply as pipeline_dit.py:233 does — else `latents / sf + shift` (SD3).
public struct VAEDecoder: SampleDecoder {
    public let vae: AutoencoderKL

    public init(vae: AutoencoderKL) { self.vae = vae }

    public var scale: Int { vae.config.spatialScale }

    // z: [B, lat, h, w] (scaled latents) -> [B, 3, h·scale, w·scale] in [-1, 1] (not clamped)
    public func decode(_ z: Tensor) throws -> Tensor {
        var latents = z
        if let shift = vae.config.shiftFactor {
            let sf = Float(vae.config.scalingFactor), sh = Float(shift)
            for i in 0..<latents.count { latents.data[i] = latents.data[i] / sf + sh }
        } else {
            let inverse = Float(1 / vae.config.scalingFactor)
            for i in 0..<latents.count { latents.data[i] *= inverse }
        }
        return try vae.decode(latents)
    }
}

/// Pixel-space pipelines (no `vae/`): the sample already is the image in [-1, 1].
public struct PixelSpaceDecoder: SampleDecoder {
    public init() {}
    public var scale: Int { 1 }
    public func decode(_ z: Tensor) throws -> Tensor { z }
}
