// AMQP field tables (headers, queue/exchange arguments) and their conversion to and from rabbitmq-c's
// amqp_table_t. Type letters are RabbitMQ's (the 0-9-1 errata), see the table in amqp.h.
import CRabbitMQ
import Foundation

/// One value in an AMQP field table or array.
public enum FieldValue: Sendable, Equatable, Hashable {
    case bool(Bool)
    case int8(Int8)
    case uint8(UInt8)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    /// Note: RabbitMQ cannot parse unsigned 64-bit values ('L'); sending one makes it close the connection.
    case uint64(UInt64)
    case float(Float)
    case double(Double)
    case decimal(scale: UInt8, value: UInt32)
    /// A long string ('S'). Invalid UTF-8 from the wire is repaired; use `.bytes` for binary data.
    case string(String)
    /// A byte array ('x').
    case bytes([UInt8])
    /// Seconds since the Unix epoch ('T').
    case timestamp(UInt64)
    case array([FieldValue])
    case table(FieldTable)
    case void

    /// Convenience readers used by callers that only care about "some integer".
    public var intValue: Int64? {
        switch self {
        case .int8(let v): Int64(v)
        case .uint8(let v): Int64(v)
        case .int16(let v): Int64(v)
        case .uint16(let v): Int64(v)
        case .int32(let v): Int64(v)
        case .uint32(let v): Int64(v)
        case .int64(let v): v
        case .uint64(let v): v <= UInt64(Int64.max) ? Int64(v) : nil
        default: nil
        }
    }

    public var stringValue: String? {
        switch self {
        case .string(let s): s
        case .bytes(let b): String(validating: b, as: UTF8.self)
        default: nil
        }
    }
}

/// An AMQP field table. Keys are at most 128 bytes of UTF-8; the order of keys is not significant.
public typealias FieldTable = [String: FieldValue]

// MARK: - to rabbitmq-c

private enum Kind {
    static let boolean = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
    static let i8 = UInt8(AMQP_FIELD_KIND_I8.rawValue)
    static let u8 = UInt8(AMQP_FIELD_KIND_U8.rawValue)
    static let i16 = UInt8(AMQP_FIELD_KIND_I16.rawValue)
    static let u16 = UInt8(AMQP_FIELD_KIND_U16.rawValue)
    static let i32 = UInt8(AMQP_FIELD_KIND_I32.rawValue)
    static let u32 = UInt8(AMQP_FIELD_KIND_U32.rawValue)
    static let i64 = UInt8(AMQP_FIELD_KIND_I64.rawValue)
    static let u64 = UInt8(AMQP_FIELD_KIND_U64.rawValue)
    static let f32 = UInt8(AMQP_FIELD_KIND_F32.rawValue)
    static let f64 = UInt8(AMQP_FIELD_KIND_F64.rawValue)
    static let decimal = UInt8(AMQP_FIELD_KIND_DECIMAL.rawValue)
    static let utf8 = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
    static let array = UInt8(AMQP_FIELD_KIND_ARRAY.rawValue)
    static let timestamp = UInt8(AMQP_FIELD_KIND_TIMESTAMP.rawValue)
    static let table = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
    static let void = UInt8(AMQP_FIELD_KIND_VOID.rawValue)
    static let bytes = UInt8(AMQP_FIELD_KIND_BYTES.rawValue)
}

extension CArena {
    /// Encodes a table into arena memory; valid while the arena lives.
    func table(_ table: FieldTable) throws -> amqp_table_t {
        if table.isEmpty { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = allocate(amqp_table_entry_t.self, count: table.count)
        for (i, key) in table.keys.sorted().enumerated() {
            guard key.utf8.count <= 128 else {
                throw AMQPError.invalidArgument("table key '\(key.prefix(40))...' is longer than 128 bytes")
            }
            guard let value = table[key] else { continue }
            (entries + i).initialize(to: amqp_table_entry_t(key: bytes(key), value: try fieldValue(value)))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func fieldValue(_ value: FieldValue) throws -> amqp_field_value_t {
        var fv = amqp_field_value_t()
        switch value {
        case .bool(let v): fv.kind = Kind.boolean; fv.value.boolean = v ? 1 : 0
        case .int8(let v): fv.kind = Kind.i8; fv.value.i8 = v
        case .uint8(let v): fv.kind = Kind.u8; fv.value.u8 = v
        case .int16(let v): fv.kind = Kind.i16; fv.value.i16 = v
        case .uint16(let v): fv.kind = Kind.u16; fv.value.u16 = v
        case .int32(let v): fv.kind = Kind.i32; fv.value.i32 = v
        case .uint32(let v): fv.kind = Kind.u32; fv.value.u32 = v
        case .int64(let v): fv.kind = Kind.i64; fv.value.i64 = v
        case .uint64(let v): fv.kind = Kind.u64; fv.value.u64 = v
        case .float(let v): fv.kind = Kind.f32; fv.value.f32 = v
        case .double(let v): fv.kind = Kind.f64; fv.value.f64 = v
        case .decimal(let scale, let v): fv.kind = Kind.decimal; fv.value.decimal = amqp_decimal_t(decimals: scale, value: v)
        case .string(let s): fv.kind = Kind.utf8; fv.value.bytes = bytes(s)
        case .bytes(let b): fv.kind = Kind.bytes; fv.value.bytes = bytes(b)
        case .timestamp(let v): fv.kind = Kind.timestamp; fv.value.u64 = v
        case .table(let t): fv.kind = Kind.table; fv.value.table = try table(t)
        case .void: fv.kind = Kind.void
        case .array(let items):
            fv.kind = Kind.array
            if items.isEmpty {
                fv.value.array = amqp_array_t(num_entries: 0, entries: nil)
            } else {
                let entries = allocate(amqp_field_value_t.self, count: items.count)
                for (i, item) in items.enumerated() { (entries + i).initialize(to: try fieldValue(item)) }
                fv.value.array = amqp_array_t(num_entries: Int32(items.count), entries: entries)
            }
        }
        return fv
    }
}

// MARK: - from rabbitmq-c (copies everything out: the source memory is released soon after)

func copyString(_ b: amqp_bytes_t) -> String {
    guard b.len > 0, let p = b.bytes else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: p, count: b.len), as: UTF8.self)
}

func copyBytes(_ b: amqp_bytes_t) -> [UInt8] {
    guard b.len > 0, let p = b.bytes else { return [] }
    return Array(UnsafeRawBufferPointer(start: p, count: b.len))
}

func decodeTable(_ t: amqp_table_t) throws -> FieldTable {
    var out = FieldTable()
    guard t.num_entries > 0, let entries = t.entries else { return out }
    for i in 0..<Int(t.num_entries) {
        out[copyString(entries[i].key)] = try decodeField(entries[i].value)
    }
    return out
}

/// Where `t` (or a table or array inside it) has an empty key, as `headers["k"]`; nil when nowhere.
/// AMQP 0-9-1 field names are 1..128 characters; rabbitmq-c refuses to copy an empty one.
func emptyKeyPath(_ t: amqp_table_t, at path: String) -> String? {
    guard t.num_entries > 0, let entries = t.entries else { return nil }
    for i in 0..<Int(t.num_entries) {
        let key = copyString(entries[i].key)
        if key.isEmpty { return "\(path) has an entry with an empty name" }
        if let p = emptyKeyPath(entries[i].value, at: "\(path)[\"\(key.prefix(40))\"]") { return p }
    }
    return nil
}

private func emptyKeyPath(_ fv: amqp_field_value_t, at path: String) -> String? {
    switch fv.kind {
    case Kind.table: return emptyKeyPath(fv.value.table, at: path)
    case Kind.array:
        let a = fv.value.array
        guard a.num_entries > 0, let entries = a.entries else { return nil }
        for i in 0..<Int(a.num_entries) {
            if let p = emptyKeyPath(entries[i], at: "\(path)[\(i)]") { return p }
        }
        return nil
    default: return nil
    }
}

func decodeField(_ fv: amqp_field_value_t) throws -> FieldValue {
    switch fv.kind {
    case Kind.boolean: return .bool(fv.value.boolean != 0)
    case Kind.i8: return .int8(fv.value.i8)
    case Kind.u8: return .uint8(fv.value.u8)
    case Kind.i16: return .int16(fv.value.i16)
    case Kind.u16: return .uint16(fv.value.u16)
    case Kind.i32: return .int32(fv.value.i32)
    case Kind.u32: return .uint32(fv.value.u32)
    case Kind.i64: return .int64(fv.value.i64)
    case Kind.u64: return .uint64(fv.value.u64)
    case Kind.f32: return .float(fv.value.f32)
    case Kind.f64: return .double(fv.value.f64)
    case Kind.decimal: return .decimal(scale: fv.value.decimal.decimals, value: fv.value.decimal.value)
    case Kind.utf8: return .string(copyString(fv.value.bytes))
    case Kind.bytes: return .bytes(copyBytes(fv.value.bytes))
    case Kind.timestamp: return .timestamp(fv.value.u64)
    case Kind.table: return .table(try decodeTable(fv.value.table))
    case Kind.void: return .void
    case Kind.array:
        let a = fv.value.array
        guard a.num_entries > 0, let entries = a.entries else { return .array([]) }
        return .array(try (0..<Int(a.num_entries)).map { try decodeField(entries[$0]) })
    default:
        throw AMQPError.protocolError("unknown field table type '\(Character(Unicode.Scalar(fv.kind)))'")
    }
}

// MARK: - memory for outgoing C structures

/// Owns malloc'd memory handed to rabbitmq-c for the duration of one call (rabbitmq-c encodes synchronously).
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for b in blocks { b.deallocate() } }

    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.stride * max(count, 1),
                                                   alignment: MemoryLayout<T>.alignment)
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    func bytes(_ s: String) -> amqp_bytes_t { bytes(Array(s.utf8)) }

    func bytes(_ b: [UInt8]) -> amqp_bytes_t {
        if b.isEmpty { return amqp_bytes_t(len: 0, bytes: nil) }
        let p = allocate(UInt8.self, count: b.count)
        p.initialize(from: b, count: b.count)
        return amqp_bytes_t(len: b.count, bytes: UnsafeMutableRawPointer(p))
    }

    /// A NUL-terminated copy, for the few calls that take `const char *`.
    func cString(_ s: String) -> UnsafePointer<CChar> {
        let utf8 = Array(s.utf8CString)
        let p = allocate(CChar.self, count: utf8.count)
        p.initialize(from: utf8, count: utf8.count)
        return UnsafePointer(p)
    }
}
