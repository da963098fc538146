/// Extensions for kernels that write into a tensor without a zero fill first.
extension Tensor {
    /// A tensor of `shape` whose values are unspecified until written (no zero fill).
    public init(uninitializedShape shape: [Int]) {
        let n = shape.reduce(1, *)
        self.init(shape: shape, data: [Float](unsafeUninitializedCapacity: n) { _, count in count = n })
    }
}

/// A heap buffer of floats for activations inside one forward pass: allocated once, written through
/// its pointer by the kernels, freed with the object.
public final class FloatBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
    }

    /// A copy of `tensor`'s values.
    public convenience init(copying tensor: Tensor) {
        self.init(count: tensor.count)
        tensor.data.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: tensor.count) }
    }

    deinit { pointer.deallocate() }

    /// The first `shape`-many values as a tensor (a copy).
    public func tensor(shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        precondition(n <= count, "FloatBuffer: \(shape) does not fit in \(count) floats")
        return Tensor(shape: shape, data: Array(UnsafeBufferPointer(start: pointer, count: n)))
    }
}
