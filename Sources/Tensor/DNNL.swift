// The one place Tensor speaks oneDNN's C API (Debian's libdnnl 2.6, OpenMP runtime): the CPU engine, what the
// CPU offers, and primitives created once per shape and cached. Kernels (BF16Linear.swift) describe a primitive
// and run it on their own pointers; nothing here allocates per call once a shape has been seen.
import CDNNL
import Core
import Glibc

/// oneDNN on this machine: the engine (created once) and what its CPU dispatcher found.
public enum DNNL {
    /// The CPU engine, or nil when oneDNN cannot create one (then every caller takes its plain path).
    nonisolated(unsafe) static let engine: dnnl_engine_t? = {
        var e: dnnl_engine_t?
        return dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success ? e : nil
    }()

    /// The instruction set oneDNN's kernels use here (`dnnl_get_effective_cpu_isa`, a bit set).
    public static var isa: UInt32 { dnnl_get_effective_cpu_isa().rawValue }

    /// Whether the CPU has bf16 dot products (AVX512_BF16 `vdpbf16ps` or AMX), read from oneDNN's dispatcher,
    /// which asks cpuid. Only then does a bf16 weight go through oneDNN's bf16 matmul.
    public static let hasBF16DotProducts: Bool = {
        guard engine != nil else { return false }
        let bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return dnnl_get_effective_cpu_isa().rawValue & bf16 == bf16
    }()

    /// Whether oneDNN runs its avx512_core kernels here (its float32 Winograd convolution needs them).
    public static let hasAVX512: Bool = {
        guard engine != nil else { return false }
        let core = dnnl_cpu_isa_avx512_core.rawValue
        return dnnl_get_effective_cpu_isa().rawValue & core == core
    }()

    /// A readable name for `isa` (for benchmark headers).
    public static var isaName: String {
        let v = isa
        if v & dnnl_cpu_isa_avx512_core_amx.rawValue == dnnl_cpu_isa_avx512_core_amx.rawValue { return "avx512_core_amx" }
        if v & dnnl_cpu_isa_avx512_core_bf16.rawValue == dnnl_cpu_isa_avx512_core_bf16.rawValue { return "avx512_core_bf16" }
        if v & dnnl_cpu_isa_avx512_core_vnni.rawValue == dnnl_cpu_isa_avx512_core_vnni.rawValue { return "avx512_core_vnni" }
        if v & dnnl_cpu_isa_avx512_core.rawValue == dnnl_cpu_isa_avx512_core.rawValue { return "avx512_core" }
        if v & dnnl_cpu_isa_avx2.rawValue == dnnl_cpu_isa_avx2.rawValue { return "avx2" }
        return "sse41 or less"
    }

    /// libgomp's `omp_set_num_threads`, found in the process (libdnnl loads libgomp; Debian ships no
    /// unversioned libgomp.so to link against). It sets the calling thread's own count for its next parallel
    /// regions: per call, felt by no other thread.
    private static let setOMPThreads: (@convention(c) (Int32) -> Void)? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (Int32) -> Void).self)
    }()

    /// Sets the calling thread's OpenMP thread count for the oneDNN primitive it runs next.
    static func useThreads(_ n: Int) { setOMPThreads?(Int32(max(1, n))) }
}

/// A oneDNN primitive made once for one shape, with a pool of execution contexts (a stream, one memory object
/// per argument, a scratchpad): a call takes a context, points its memories at the caller's buffers, runs, and
/// gives it back, so concurrent callers of the same shape never share a memory object or scratchpad.
final class DNNLPrimitive: @unchecked Sendable {
    let primitive: dnnl_primitive_t
    /// `(argument, memory descriptor)` in the order `run` receives pointers.
    private let arguments: [(Int32, dnnl_memory_desc_t)]
    private var scratchpad: dnnl_memory_desc_t
    private let scratchpadBytes: Int
    private let contexts = Locked<[Context]>([])
    /// The implementation oneDNN chose (e.g. `brg:avx512_core_bf16`), for tests and benchmark notes.
    let implementation: String

    private final class Context {
        let stream: dnnl_stream_t
        let memories: [dnnl_memory_t]
        let scratch: UnsafeMutableRawPointer?
        let scratchMemory: dnnl_memory_t?
        var args: [dnnl_exec_arg_t]

        /// With `external`, the scratchpad memory object gets the caller's buffer per call; otherwise
        /// `scratchpadBytes` are allocated here, once.
        init?(engine: dnnl_engine_t, arguments: [(Int32, dnnl_memory_desc_t)], scratchpad: inout dnnl_memory_desc_t,
              scratchpadBytes: Int, external: Bool) {
            var s: dnnl_stream_t?
            guard dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let s else { return nil }
            stream = s
            var mems: [dnnl_memory_t] = []
            var args: [dnnl_exec_arg_t] = []
            for (arg, desc) in arguments {
                var d = desc
                var m: dnnl_memory_t?
                // DNNL_MEMORY_NONE: the handle is set per call, nothing is allocated here.
                guard dnnl_memory_create(&m, &d, engine, nil) == dnnl_success, let m else { return nil }
                mems.append(m)
                args.append(dnnl_exec_arg_t(arg: arg, memory: m))
            }
            if scratchpadBytes > 0 || external {
                let p = external ? nil : UnsafeMutableRawPointer.allocate(byteCount: scratchpadBytes, alignment: 64)
                var m: dnnl_memory_t?
                guard dnnl_memory_create(&m, &scratchpad, engine, p) == dnnl_success, let m else {
                    p?.deallocate()
                    return nil
                }
                scratch = p
                scratchMemory = m
                args.append(dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: m))
            } else {
                scratch = nil
                scratchMemory = nil
            }
            memories = mems
            self.args = args
        }
    }

    /// Creates the primitive from an operation descriptor (`dnnl_matmul_desc_t`, `dnnl_convolution_desc_t`, …)
    /// with a user-managed scratchpad; nil when oneDNN has no implementation for it here.
    /// With `sum`, the result is added into the destination (`dst += op(src)`).
    convenience init?(descriptor: UnsafeRawPointer, sum: Bool = false, arguments: [(Int32, dnnl_memory_desc_t)]) {
        guard let engine = DNNL.engine, let attr = DNNLPrimitive.userScratchpadAttributes(sum: sum) else { return nil }
        defer { dnnl_primitive_attr_destroy(attr) }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, descriptor, attr, engine, nil) == dnnl_success, let pd else { return nil }
        self.init(pd, arguments: arguments)
    }

    /// A reorder from `from` to `to` (layout changes, e.g. `nchw` ↔ `nChw16c`); with `sum`, adds into `to`.
    convenience init?(reorderFrom from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, sum: Bool = false) {
        guard let engine = DNNL.engine, let attr = DNNLPrimitive.userScratchpadAttributes(sum: sum) else { return nil }
        defer { dnnl_primitive_attr_destroy(attr) }
        var f = from, t = to
        var pd: dnnl_primitive_desc_t?
        guard dnnl_reorder_primitive_desc_create(&pd, &f, engine, &t, engine, attr) == dnnl_success, let pd else { return nil }
        self.init(pd, arguments: [(DNNL_ARG_FROM, from), (DNNL_ARG_TO, to)])
    }

    /// Attributes every primitive here is created with: a user-managed scratchpad and, with `sum`, `dst += result`.
    /// The caller destroys them (`dnnl_primitive_attr_destroy`) once the primitive descriptor exists.
    private static func userScratchpadAttributes(sum: Bool) -> dnnl_primitive_attr_t? {
        var attr: dnnl_primitive_attr_t?
        guard dnnl_primitive_attr_create(&attr) == dnnl_success, let attr else { return nil }
        _ = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user)
        if sum, !appendSum(attr) {
            dnnl_primitive_attr_destroy(attr)
            return nil
        }
        return attr
    }

    /// Post-op `dst += result` (oneDNN's sum post-op with scale 1).
    private static func appendSum(_ attr: dnnl_primitive_attr_t) -> Bool {
        var ops: dnnl_post_ops_t?
        guard dnnl_post_ops_create(&ops) == dnnl_success, let ops else { return false }
        defer { dnnl_post_ops_destroy(ops) }
        return dnnl_post_ops_append_sum(ops, 1) == dnnl_success && dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success
    }

    /// Takes a primitive descriptor (and destroys it).
    private init?(_ pd: dnnl_primitive_desc_t, arguments: [(Int32, dnnl_memory_desc_t)]) {
        defer { dnnl_primitive_desc_destroy(pd) }
        var impl: UnsafePointer<CChar>?
        _ = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)
        implementation = impl.map { String(cString: $0) } ?? "?"
        guard let sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) else { return nil }
        scratchpad = sp.pointee
        scratchpadBytes = dnnl_memory_desc_get_size(sp)
        var p: dnnl_primitive_t?
        guard dnnl_primitive_create(&p, pd) == dnnl_success, let p else { return nil }
        primitive = p
        self.arguments = arguments
    }

    /// Bytes of scratchpad one call needs (a caller that passes its own to `run` sizes it with this).
    var scratchpadSize: Int { scratchpadBytes }

    /// Runs the primitive on `pointers` (one per argument, in `arguments` order) with `threads` OpenMP threads.
    /// `scratchpad` (≥ `scratchpadSize` bytes, 64-byte aligned) is the caller's; without it the context's own
    /// (allocated once per context) is used. Returns false when oneDNN reports a failure (the caller then takes
    /// its plain path).
    func run(_ pointers: [UnsafeMutableRawPointer?], scratchpad external: UnsafeMutableRawPointer? = nil,
             threads: Int) -> Bool {
        guard let engine = DNNL.engine else { return false }
        let taken = contexts.withLock { $0.popLast() }
        guard let context = taken ?? Context(engine: engine, arguments: arguments, scratchpad: &scratchpad,
                                             scratchpadBytes: external == nil ? scratchpadBytes : 0,
                                             external: external != nil && scratchpadBytes > 0) else { return false }
        defer { contexts.withLock { $0.append(context) } }
        for (memory, pointer) in zip(context.memories, pointers) {
            guard dnnl_memory_set_data_handle(memory, pointer) == dnnl_success else { return false }
        }
        if let m = context.scratchMemory {
            guard external != nil || context.scratch != nil else { return false }  // made for a caller's scratchpad
            guard dnnl_memory_set_data_handle(m, external ?? context.scratch) == dnnl_success else { return false }
        }
        DNNL.useThreads(threads)
        return context.args.withUnsafeBufferPointer { args in
            dnnl_primitive_execute(primitive, context.stream, Int32(args.count), args.baseAddress) == dnnl_success
        } && dnnl_stream_wait(context.stream) == dnnl_success
    }
}

/// Primitives by shape: made on first use, kept for the process's life (a model has a few dozen shapes).
/// A shape oneDNN cannot serve is remembered as nil, so it is asked once.
final class DNNLCache<Key: Hashable & Sendable, Value: AnyObject & Sendable>: Sendable {
    private let entries = Locked<[Key: Value?]>([:])

    func entry(_ key: Key, make: () -> Value?) -> Value? {
        if let found = entries.withLock({ $0[key] }) { return found }
        let made = make()
        return entries.withLock { cache in
            if let raced = cache[key] { return raced }
            cache[key] = made
            return made
        }
    }
}

/// The oneDNN matmul `[m, k]·[k, n]` (+ bias `[1, n]` float32) → float32 `[m, n]`, activations of type `type` row-major,
/// the weight of type `type` stored `[n, k]` row-major (read as Wᵀ in `ba` order, no copy). nil where oneDNN has none.
func dnnlLinearMatmul(m: Int, k: Int, n: Int, type: dnnl_data_type_t, bias: Bool) -> DNNLPrimitive? {
    guard var src = dnnlDesc([m, k], type, dnnl_ab),
          var wei = dnnlDesc([k, n], type, dnnl_ba),  // W [n, k] row-major read as Wᵀ
          var dst = dnnlDesc([m, n], dnnl_f32, dnnl_ab),
          var b = dnnlDesc([1, n], dnnl_f32, dnnl_ab) else { return nil }
    var desc = dnnl_matmul_desc_t()
    let made = bias
        ? dnnl_matmul_desc_init(&desc, &src, &wei, &b, &dst)
        : dnnl_matmul_desc_init(&desc, &src, &wei, nil, &dst)
    guard made == dnnl_success else { return nil }
    var args: [(Int32, dnnl_memory_desc_t)] = [(DNNL_ARG_SRC, src), (DNNL_ARG_WEIGHTS, wei), (DNNL_ARG_DST, dst)]
    if bias { args.append((DNNL_ARG_BIAS, b)) }
    return withUnsafePointer(to: &desc) { DNNLPrimitive(descriptor: UnsafeRawPointer($0), arguments: args) }
}

/// A plain (row-major, dense) memory descriptor for `dims` of `type` in the order `tag` says.
func dnnlDesc(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t? {
    var desc = dnnl_memory_desc_t()
    var d = [Int64](repeating: 0, count: Int(DNNL_MAX_NDIMS))
    for (i, v) in dims.enumerated() { d[i] = Int64(v) }
    let status = dnnl_memory_desc_init_by_tag(&desc, Int32(dims.count), d, type, tag)
    return status == dnnl_success ? desc : nil
}

/// A float32 memory descriptor for `dims` with explicit element `strides` (e.g. a strip of rows of NCHW planes).
func dnnlStridedDesc(_ dims: [Int], strides: [Int]) -> dnnl_memory_desc_t? {
    var desc = dnnl_memory_desc_t()
    var d = [Int64](repeating: 0, count: Int(DNNL_MAX_NDIMS)), s = d
    for (i, v) in dims.enumerated() { d[i] = Int64(v) }
    for (i, v) in strides.enumerated() { s[i] = Int64(v) }
    let status = dnnl_memory_desc_init_by_strides(&desc, Int32(dims.count), d, dnnl_f32, s)
    return status == dnnl_success ? desc : nil
}
