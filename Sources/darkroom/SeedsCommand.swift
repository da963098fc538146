import ArgumentParser
import Config
import Foundation
import Worker

/// `darkroom seeds list|show|import|export|rm`: the stored good seeds (`save_seed_as` / `seed_ref`)
/// of a machine, over the same `SeedStore` (and its file lock) the workers use.
struct SeedsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seeds",
        abstract: "Manage stored good seeds: the initial noise kept by save_seed_as and reused by seed_ref.",
        subcommands: [List.self, Show.self, Import.self, Export.self, Remove.self], defaultSubcommand: List.self)

    struct StoreOptions: ParsableArguments {
        @OptionGroup var local: LocalOptions
        @Option(help: "Seed store folder (default: the config's seeds_dir).") var dir: String?

        func folder() throws -> String {
            if let dir { return dir }
            return try local.load().seedsDir
        }

        func open() throws -> SeedStore {
            let folder = try folder()
            do {
                return try SeedStore(directory: folder)
            } catch let e as WorkerError {
                throw CLIError(e.message + " (give --dir)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the stored seeds.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let folder = try store.folder()
            guard FileManager.default.fileExists(atPath: folder) else {
                warn("no stored seeds: \(folder) does not exist yet")
                return
            }
            let entries = try seedsCall { try store.open().list() }
            guard !entries.isEmpty else {
                warn("no stored seeds in \(folder)")
                return
            }
            let rows = [["NAME", "IMAGES", "SIZE", "MODEL", "SEED", "CREATED"]] + entries.map { e in
                [e.name, String(e.shape.first ?? 0), "\(e.width)x\(e.height)", e.model, e.seed.isEmpty ? "-" : e.seed, e.created]
            }
            let widths = (0..<6).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for r in rows {
                print(r.enumerated().map { c, s in c == 5 ? s : s + String(repeating: " ", count: widths[c] - s.count) }
                    .joined(separator: "  "))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one stored seed: shape, origin, noise statistics.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Seed name.") var name: String

        func run() async throws {
            let s = try store.open()
            let (e, noise) = try seedsCall { try s.load(name: name) }
            let mean = noise.reduce(0.0) { $0 + Double($1) } / Double(max(noise.count, 1))
            let variance = noise.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(max(noise.count, 1))
            print("name:      \(e.name)")
            print("file:      \(s.directory)/\(e.name).safetensors (\(e.bytes) bytes)")
            print("shape:     [\(e.shape.map(String.init).joined(separator: ", "))] (images, channels, height, width)")
            print("image:     \(e.width)x\(e.height)")
            print("model:     \(e.model.isEmpty ? "-" : e.model)")
            print("seed:      \(e.seed.isEmpty ? "-" : e.seed)")
            print("generator: \(e.generator.isEmpty ? "-" : e.generator)")
            print("created:   \(e.created.isEmpty ? "-" : e.created)")
            print(String(format: "noise:     mean %.4f, std %.4f over %d values", mean, variance.squareRoot(), noise.count))
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy a seed file (safetensors with a tensor \"noise\" [n, C, h, w]) into the store.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The safetensors file.") var file: String
        @Option(help: "Name to store it under (default: the file name without .safetensors).") var name: String?

        func run() async throws {
            let target = name ?? ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            guard FileManager.default.fileExists(atPath: file) else { throw CLIError("\(file) does not exist") }
            let s = try store.open()
            try seedsCall { try s.importFile(file, as: target) }
            print(target)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy a stored seed out to a safetensors file.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Seed name.") var name: String
        @Argument(help: "Destination file.") var file: String

        func run() async throws {
            let s = try store.open()
            try seedsCall { try s.exportFile(name: name, to: file) }
            print(file)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a stored seed.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Seed name.") var name: String

        func run() async throws {
            let s = try store.open()
            try seedsCall { try s.remove(name: name) }
            warn("removed \(name)")
        }
    }
}

/// Runs a seed-store call, turning its errors into one-line CLI errors.
func seedsCall<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as WorkerError {
        throw CLIError(oneLine(e.message))
    } catch let e as CLIError {
        throw e
    } catch {
        throw CLIError(oneLine("\(error)"))
    }
}
