import Tensor

/// Where a model component reads its parameters from, by diffusers state_dict name
/// (e.g. `transformer_blocks.0.attn1.to_q.weight`).
public protocol WeightStore: Sendable {
    /// The tensor named `name`, as float32. Throws if it is missing or cannot be read.
    func weight(_ name: String) throws -> WeightView
    /// Whether a tensor of that name exists.
    func contains(_ name: String) -> Bool
    /// The tensor as a matrix for `linear`: stores that keep 16-bit tensors 16-bit return `.half`.
    func matrix(_ name: String) throws -> WeightMatrix
    /// The stored element type (safetensors dtype name, e.g. "BF16"), nil when there is no such tensor.
    func dtype(_ name: String) -> String?
    /// The stored shape, nil when there is no such tensor.
    func shape(_ name: String) -> [Int]?
}

extension WeightStore {
    public func matrix(_ name: String) throws -> WeightMatrix { .float(try weight(name)) }
    public func dtype(_ name: String) -> String? { contains(name) ? "F32" : nil }
    public func shape(_ name: String) -> [Int]? { (try? weight(name))?.shape }
}
