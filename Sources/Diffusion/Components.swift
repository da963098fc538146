import Tensor

/// A model that predicts the denoising direction from a noisy sample: a DiT in latent
/// or pixel space. One forward handles a whole batch (CFG halves included).
public protocol Denoiser: Sendable {
    var inChannels: Int { get }
    /// 2 * inChannels for learned-sigma models (the variance half is dropped by the sampler).
    var outChannels: Int { get }
    /// Spatial granularity of inputs (the patch size).
    var patchSize: Int { get }
    /// The null class used for classifier-free guidance (num_embeds_ada_norm).
    var nullClass: Int { get }
    // x: [B, C, H, W], timesteps: [B], labels: [B] -> [B, Co, H, W]
    func forward(_ x: Tensor, timesteps: [Float], labels: [Int]) throws -> Tensor
    /// The same with step caching for the images in `cache` (FirstBlockCache.swift); `[]` is `forward` itself.
    // x: [B, C, H, W], timesteps: [B], labels: [B] -> [B, Co, H, W]
    func forward(_ x: Tensor, timesteps: [Float], labels: [Int], cache: [FirstBlockCacheGroup]) throws -> Tensor
}

/// Turns the sampler's final sample into an image in [-1, 1]: the VAE decoder, or the
/// identity for pixel-space pipelines.
public protocol SampleDecoder: Sendable {
    /// Spatial factor between image and sample (8 for the SD VAE, 1 for pixel space).
    var scale: Int { get }
    // z: [B, c, h, w] -> [B, 3, h*scale, w*scale]
    func decode(_ z: Tensor) throws -> Tensor
}
