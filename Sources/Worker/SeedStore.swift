import Diffusion
import Foundation
import Jobs
import Tensor
import Weights

/// The disk store of good seeds: a job's initial noise kept under a name (`save_seed_as`)
/// and reused by later jobs (`seed_ref`), which then get the identical image.
///
/// One safetensors file per name, `<dir>/<name>.safetensors`, holding tensor `noise`
/// `[n, C, h, w]` (one row per image of the job) and metadata: seed, generator, shape, model,
/// width, height, created. Writes are atomic (temp file + rename) and serialised between the
/// workers of one machine by `flock` on `<dir>/.lock`; names are checked against the contract's
/// seed-name rule, so no name can leave the folder.
public final class SeedStore: Sendable {
    public let directory: String

    public struct Entry: Sendable, Equatable {
        public let name: String
        /// `[n, C, h, w]`.
        public let shape: [Int]
        public let seed: String
        public let generator: String
        public let model: String
        public let width: Int
        public let height: Int
        public let created: String
        public let bytes: Int
    }

    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WorkerError(.seeds, "cannot create the seed store folder \(directory): \(error.localizedDescription)")
        }
        self.directory = directory
    }

    /// Stores `noise` (`[n, C, h, w]`, flattened) under `name`, replacing an older entry of that name.
    public func save(name: String, noise: [Float], shape: [Int], seed: UInt64?, model: String, width: Int, height: Int) throws {
        try check(name)
        guard shape.count == 4, shape.reduce(1, *) == noise.count else {
            throw WorkerError(.seeds, "noise of \(noise.count) values does not have shape \(shape)")
        }
        let meta = [
            "seed": seed.map(String.init) ?? "",
            "generator": "torch.Generator(cpu).manual_seed(seed + i); torch.randn((1, C, h, w))",
            "shape": shape.map(String.init).joined(separator: ","),
            "model": model, "width": String(width), "height": String(height),
            "created": ISO8601DateFormatter().string(from: Date()),
        ]
        try locked {
            do {
                try SafeTensorsWriter.write(tensors: [("noise", shape, noise)], metadata: meta, to: url(name))
            } catch {
                throw WorkerError(.seeds, "cannot store seed \"\(name)\": \(error)")
            }
        }
    }

    /// The stored noise and its entry; a missing or unreadable entry is a clear error.
    public func load(name: String) throws -> (entry: Entry, noise: [Float]) {
        try check(name)
        return try locked {
            guard FileManager.default.fileExists(atPath: path(name)) else {
                throw WorkerError(.seeds, "no stored seed named \"\(name)\"")
            }
            do {
                let file = try SafeTensorsFile(url: url(name))
                let w = try file.weight("noise")
                return (entry(name, file: file, shape: w.shape), Array(w.buffer))
            } catch let e as WorkerError {
                throw e
            } catch {
                throw WorkerError(.seeds, "stored seed \"\(name)\" is unreadable: \(error)")
            }
        }
    }

    public func list() throws -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }.sorted().compactMap { file in
            let name = String(file.dropLast(".safetensors".count))
            guard SeedName.isValid(name), let f = try? SafeTensorsFile(url: url(name)), let info = f.info("noise") else { return nil }
            return entry(name, file: f, shape: info.shape)
        }
    }

    public func remove(name: String) throws {
        try check(name)
        try locked {
            guard FileManager.default.fileExists(atPath: path(name)) else {
                throw WorkerError(.seeds, "no stored seed named \"\(name)\"")
            }
            try FileManager.default.removeItem(atPath: path(name))
        }
    }

    /// Copies a seed file in (validating it) under `name`.
    public func importFile(_ source: String, as name: String) throws {
        try check(name)
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: URL(fileURLWithPath: source)) } catch {
            throw WorkerError(.seeds, "\(source) is not a readable safetensors file: \(error)")
        }
        guard let info = file.info("noise"), info.shape.count == 4, let w = try? file.weight("noise") else {
            throw WorkerError(.seeds, "\(source) has no tensor \"noise\" of shape [n, C, h, w]")
        }
        var meta = file.metadata
        meta["imported_from"] = (source as NSString).lastPathComponent
        try locked {
            try SafeTensorsWriter.write(tensors: [("noise", info.shape, Array(w.buffer))], metadata: meta, to: url(name))
        }
    }

    public func exportFile(name: String, to destination: String) throws {
        try check(name)
        try locked {
            guard FileManager.default.fileExists(atPath: path(name)) else {
                throw WorkerError(.seeds, "no stored seed named \"\(name)\"")
            }
            if FileManager.default.fileExists(atPath: destination) { try FileManager.default.removeItem(atPath: destination) }
            try FileManager.default.copyItem(atPath: path(name), toPath: destination)
        }
    }

    // MARK: -

    func path(_ name: String) -> String { directory + "/" + name + ".safetensors" }
    func url(_ name: String) -> URL { URL(fileURLWithPath: path(name)) }

    private func check(_ name: String) throws {
        guard SeedName.isValid(name) else {
            throw WorkerError(.seeds, "\"\(name)\" is not a valid seed name (1..64 of [A-Za-z0-9_-], dots allowed inside)")
        }
    }

    private func entry(_ name: String, file: SafeTensorsFile, shape: [Int]) -> Entry {
        let m = file.metadata
        let size = (try? FileManager.default.attributesOfItem(atPath: path(name))[.size] as? Int) ?? 0
        return Entry(name: name, shape: shape, seed: m["seed"] ?? "", generator: m["generator"] ?? "", model: m["model"] ?? "",
                     width: Int(m["width"] ?? "") ?? 0, height: Int(m["height"] ?? "") ?? 0,
                     created: m["created"] ?? "", bytes: size)
    }

    private func locked<T>(_ body: () throws -> T) throws -> T {
        let fd = open(directory + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WorkerError(.seeds, "cannot open \(directory)/.lock: \(errnoText())") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
