import Tensor

/// Where a model component reads its parameters from, by diffusers state_dict name
/// (e.g. `transformer_blocks.0.attn1.to_q.weight`).
public protocol WeightStore: Sendable {
    /// The tensor named `name`, as float32. Throws if it is missing or cannot be read.
    func weight(_ name: String) throws -> WeightView
    /// Whether a tensor of that name exists.
    func contains(_ name: String) -> Bool
}
