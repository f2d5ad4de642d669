import Foundation

// Dimension legend used in every shape comment of the core library:
//   B  batch size (sequences)          T  longest sequence length of the batch; L_b one's length
//   N  rows = sum_b L_b (real tokens of a packed batch)   C  hidden width (384 for MiniLM-L6)
//   H  attention heads                 hs head size = C / H
//   F  intermediate width (4C)         V  vocabulary size
//   K  number of labels (classes)      d  input width of an adapted linear layer
//   P  Givens blocks of an adapter (d - 1 for the tree layout)

/// A flat, contiguous, row-major `Float` buffer with a shape.
///
/// A reference type on purpose: kernels write into buffers that the caller allocated once
/// (outputs first in every signature), and nothing is copied behind anyone's back.
/// `capacity` is fixed at allocation; `reshape` may change the shape within it, which is how
/// activation buffers serve batches of different sizes without reallocating.
public final class Tensor: @unchecked Sendable {
    /// Current shape; its product is `count` and never exceeds `capacity`.
    public private(set) var shape: [Int]
    /// Number of floats the storage holds.
    public let capacity: Int
    /// The storage, `capacity` floats, zero-initialised. It comes from `calloc`: for a large
    /// buffer that maps fresh zero pages, which take memory only once written, so a workspace
    /// sized for the largest batch costs what the batches actually use.
    public let data: UnsafeMutablePointer<Float>

    /// Number of elements in the current shape.
    public var count: Int { shape.reduce(1, *) }

    /// A zero-filled tensor of the given shape; `capacity` defaults to the shape's size.
    public init(_ shape: [Int], capacity: Int? = nil) {
        let n = shape.reduce(1, *)
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let cap = max(capacity ?? n, n, 1)
        self.shape = shape
        self.capacity = cap
        guard let raw = calloc(cap, MemoryLayout<Float>.stride) else {
            fatalError("out of memory allocating a tensor of \(cap) floats")
        }
        self.data = raw.bindMemory(to: Float.self, capacity: cap)
    }

    /// A tensor holding `values` (row-major) with the given shape.
    public convenience init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { data.update(from: base, count: values.count) }
        }
    }

    deinit { free(data) }

    /// Changes the shape in place; the new size must fit the capacity. Contents are kept as raw memory.
    public func reshape(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        precondition(n <= capacity, "shape \(newShape) needs \(n) floats, capacity is \(capacity)")
        shape = newShape
    }

    @inline(__always)
    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// Sets the first `count` elements to zero.
    public func zero() { data.update(repeating: 0, count: count) }

    /// Fills the current shape with `value`.
    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// Copies `other`'s current contents and shape into this tensor.
    public func copy(from other: Tensor) {
        reshape(other.shape)
        data.update(from: other.data, count: other.count)
    }

    /// A new tensor with the same shape and contents.
    public func clone() -> Tensor {
        let t = Tensor(shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// The current contents as an array (for tests, serialisation and printing; not for hot paths).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Overwrites the contents with `values`, whose count must equal `count`.
    public func set(_ values: [Float]) {
        precondition(values.count == count, "expected \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { data.update(from: base, count: values.count) }
        }
    }
}

/// A trainable tensor with its gradient, under a stable name (the PEFT-style tensor name
/// without the module prefix, e.g. `givens_soft`). The optimizer keeps its moments beside it.
public final class Parameter: @unchecked Sendable {
    /// Short name of the tensor within its module (`givens_soft`, `weight`, ...).
    public let name: String
    /// The current values.
    public let value: Tensor
    /// d loss / d value, accumulated by backward passes and cleared by `zeroGrad()`.
    public let grad: Tensor
    /// Whether weight decay applies to this tensor (AdamW); adapters default to false.
    public var decays: Bool

    public init(name: String, value: Tensor, decays: Bool = false) {
        self.name = name
        self.value = value
        self.grad = Tensor(value.shape)
        self.decays = decays
    }

    public var shape: [Int] { value.shape }
    public var count: Int { value.count }
    public func zeroGrad() { grad.zero() }
}
