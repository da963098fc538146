// Sharded checkpoints: `diffusion_pytorch_model.safetensors.index.json` =
// {"metadata": {"total_size": …}, "weight_map": {tensor: shard file}} (docs/engine.md §1.2,
// diffusers utils/constants.py:29-34, modeling_utils.py:770-773).
import Foundation
import Tensor

/// A `WeightStore` over the shards named by a safetensors index file.
public final class ShardedWeights: WeightStore, @unchecked Sendable {
    public let indexURL: URL
    public let metadata: [String: JSONValue]
    /// tensor name → shard
    private let shardOf: [String: SafeTensorsFile]
    public let shards: [SafeTensorsFile]

    public init(indexURL: URL) throws {
        self.indexURL = indexURL
        let name = indexURL.lastPathComponent
        guard let data = FileManager.default.contents(atPath: indexURL.path) else {
            throw WeightError(.unreadable, file: name, "cannot read the shard index")
        }
        guard let json = try? JSONValue.parse(data), let object = json.objectValue,
              let map = object["weight_map"]?.objectValue
        else {
            throw WeightError(.badIndex, file: name, "bad index: not JSON with a weight_map object")
        }
        metadata = object["metadata"]?.objectValue ?? [:]
        let dir = indexURL.deletingLastPathComponent()
        var files: [String: SafeTensorsFile] = [:]
        var order: [SafeTensorsFile] = []
        var shardOf: [String: SafeTensorsFile] = [:]
        for tensor in map.keys.sorted() {
            guard let shardName = map[tensor]?.stringValue, !shardName.isEmpty,
                  !shardName.contains("/"), shardName != "..", shardName != "."
            else {
                throw WeightError(.badIndex, file: name, "bad index: tensor \(tensor) maps to an invalid shard name")
            }
            let shard: SafeTensorsFile
            if let s = files[shardName] {
                shard = s
            } else {
                shard = try SafeTensorsFile(url: dir.appendingPathComponent(shardName))
                files[shardName] = shard
                order.append(shard)
            }
            guard shard.contains(tensor) else {
                throw WeightError(.badIndex, file: name, "bad index: tensor \(tensor) is not in shard \(shardName)")
            }
            shardOf[tensor] = shard
        }
        self.shardOf = shardOf
        self.shards = order
    }

    public func contains(_ name: String) -> Bool { shardOf[name] != nil }

    public func weight(_ name: String) throws -> WeightView {
        guard let shard = shardOf[name] else {
            throw WeightError(.missingTensor, file: indexURL.lastPathComponent, "no tensor named \(name)")
        }
        return try shard.weight(name)
    }

    public func matrix(_ name: String) throws -> WeightMatrix {
        guard let shard = shardOf[name] else {
            throw WeightError(.missingTensor, file: indexURL.lastPathComponent, "no tensor named \(name)")
        }
        return try shard.matrix(name)
    }

    public func dtype(_ name: String) -> String? { shardOf[name]?.dtype(name) }

    public func shape(_ name: String) -> [Int]? { shardOf[name]?.shape(name) }

    /// All tensor names in the index.
    public var names: [String] { shardOf.keys.sorted() }
}
