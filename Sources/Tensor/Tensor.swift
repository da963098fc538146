/// A dense float32 tensor in row-major (C) order. Dimension order is always
/// written out where a tensor is used, e.g. `x: [B, N, E]` or `img: [B, C, H, W]`.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "Tensor: shape \(shape) does not hold \(data.count) values")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }
}

/// A read-only view of weights that live elsewhere (a mapped safetensors file or a
/// converted F16/BF16 buffer). `owner` keeps that memory alive as long as the view is.
public struct WeightView: @unchecked Sendable {
    public let shape: [Int]
    public let pointer: UnsafePointer<Float>
    public let owner: AnyObject

    public init(shape: [Int], pointer: UnsafePointer<Float>, owner: AnyObject) {
        self.shape = shape
        self.pointer = pointer
        self.owner = owner
    }

    public var count: Int { shape.reduce(1, *) }
    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
}
