import Glibc

/// Extensions for kernels that write into a tensor without a zero fill first.
extension Tensor {
    /// A tensor of `shape` whose values are unspecified until written (no zero fill).
    public init(uninitializedShape shape: [Int]) {
        let n = shape.reduce(1, *)
        self.init(shape: shape, data: [Float](unsafeUninitializedCapacity: n) { _, count in count = n })
    }
}

/// glibc serves allocations of 1 MiB and more with their own mapping, unmapped when freed. Feature maps and scratch
/// come and go every block; under glibc's default (a threshold that rises to the size of the last such buffer
/// freed, up to 32 MiB) later ones come from the heap and stay resident once freed: DC-AE decode at 512², bf16
/// weights, peak RSS 988 → 918 MiB, same CPU time (docs/engine.md §9). Set once, by the first `FloatBuffer`.
/// (`mallopt` from <malloc.h>, which Swift's Glibc module leaves out: looked up by name; M_MMAP_THRESHOLD is −3.)
private let largeAllocationsMapped: Void = {
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    _ = unsafeBitCast(symbol, to: Mallopt.self)(-3, 1 << 20)
}()

/// A heap buffer of floats for activations inside one forward pass: allocated once, written through
/// its pointer by the kernels, freed with the object.
public final class FloatBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        _ = largeAllocationsMapped
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
