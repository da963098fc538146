// The image event's PNG: the Jobs contract carries bytes, the worker makes them (libpng through Imaging).
import Imaging
import Jobs

extension ImageEvent {
    /// Encodes the job's image `index` (RGB8, job.width x job.height) as a PNG carrying its
    /// generation parameters in a tEXt chunk `parameters`.
    public init(job: Job, index: Int, seed: UInt64, rgb pixels: [UInt8]) throws {
        let png = try PNG.encodeRGB(width: job.width, height: job.height, pixels: pixels,
                                    text: [("parameters", job.parametersText(index: index, seed: seed))])
        self.init(id: job.id, index: index, seed: seed, width: job.width, height: job.height, png: png)
    }
}
