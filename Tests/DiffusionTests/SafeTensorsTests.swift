import Foundation
import Testing
import Tensor
@testable import Diffusion
import Weights

/// Builds raw safetensors bytes from a header string and a data buffer (for hand-made good and bad files).
func rawSafeTensors(header: String, data: [UInt8], headerLength: UInt64? = nil) -> Data {
    var h = Array(header.utf8)
    while (8 + h.count) % 8 != 0 { h.append(0x20) }
    var d = Data()
    withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
    d.append(contentsOf: h)
    d.append(contentsOf: data)
    return d
}

/// Copies a view's values while keeping its owner alive (a converted F16/BF16 buffer dies with the view).
func values(_ v: WeightView) -> [Float] { withExtendedLifetime(v) { Array(v.buffer) } }

@Suite struct SafeTensorsTests {
    func expectError(_ code: WeightError.Code, _ data: Data, file: String = "bad.safetensors") throws {
        let dir = try TempDir()
        let url = dir.path(file)
        try data.write(to: url)
        do {
            _ = try SafeTensorsFile(url: url)
            Issue.record("expected \(code), file opened")
        } catch let e as WeightError {
            #expect(e.code == code, "\(e)")
            #expect(e.description.contains(file))
            #expect(!e.description.contains("\n"))
        }
    }

    @Test func writerOutputReadsBackWithMetadataAndAlignment() throws {
        let dir = try TempDir()
        let url = dir.path("w.safetensors")
        let a: [Float] = (0..<6).map { Float($0) * 0.5 - 1 }
        try SafeTensorsWriter.write(tensors: [("b.weight", [2, 3], a), ("a.bias", [], [7]), ("empty", [0, 4], [])],
                                   metadata: ["format": "pt", "note": "q\"uote"], to: url)
        let bytes = try Data(contentsOf: url)
        let n = bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect((8 + n) % 8 == 0)
        let f = try SafeTensorsFile(url: url)
        #expect(f.metadata == ["format": "pt", "note": "q\"uote"])
        #expect(f.names == ["b.weight", "a.bias", "empty"])   // data order
        let w = try f.weight("b.weight")
        #expect(w.shape == [2, 3] && Array(w.buffer) == a)
        let servedFromMapping = ObjectIdentifier(w.owner) == ObjectIdentifier(f)
        #expect(servedFromMapping)   // F32 served from the mapping, no copy
        #expect(values(try f.weight("a.bias")) == [7])
        #expect(try f.weight("empty").count == 0)
        #expect(f.contains("a.bias") && !f.contains("nope"))
        #expect(throws: WeightError.self) { try f.weight("nope") }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.url.path)
        #expect(leftovers == ["w.safetensors"])
    }

    @Test func writerRejectsShapeMismatch() {
        #expect(throws: WeightError.self) {
            _ = try SafeTensorsWriter.encode(tensors: [("x", [2, 2], [1, 2, 3])])
        }
    }

    /// A write that fails names errno: `ops/chaos/run faults` found a full state dir reported only as
    /// "cannot write temporary file in DIR" (no reason), with the partial temporary file left behind.
    @Test func aFailedWriteNamesTheReason() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-missing-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try SafeTensorsWriter.write(tensors: [("x", [1], [1])], to: dir.appendingPathComponent("x.safetensors"))
            Issue.record("writing into a folder that does not exist succeeded")
        } catch {
            #expect("\(error)".contains("No such file or directory"), "\(error)")
        }
    }

    @Test func halfAndBFloat16AreConvertedExactly() throws {
        // F16: 1.0 = 0x3c00, -2.5 = 0xc100, 2^-24 (smallest subnormal) = 0x0001, 65504 = 0x7bff
        // BF16: 1.0 = 0x3f80, -3.0 = 0xc040
        let f16: [UInt16] = [0x3c00, 0xc100, 0x0001, 0x7bff]
        let bf16: [UInt16] = [0x3f80, 0xc040]
        var data = [UInt8]()
        for v in f16 + bf16 { data += [UInt8(v & 0xff), UInt8(v >> 8)] }
        let header = #"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}"#
        let dir = try TempDir()
        let url = dir.path("h.safetensors")
        try rawSafeTensors(header: header, data: data).write(to: url)
        let f = try SafeTensorsFile(url: url)
        #expect(values(try f.weight("h")) == [1, -2.5, Float(bitPattern: 0x3380_0000), 65504])
        #expect(values(try f.weight("b")) == [1, -3])
    }

    @Test func integerTensorsAreRefusedAsWeights() throws {
        let dir = try TempDir()
        let url = dir.path("i.safetensors")
        try rawSafeTensors(header: #"{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)).write(to: url)
        let f = try SafeTensorsFile(url: url)
        #expect(throws: WeightError(.notFloat, file: "i.safetensors", "tensor i is I64, not a floating-point type")) { try f.weight("i") }
    }

    @Test func emptyAndTinyFilesAreTruncated() throws {
        try expectError(.truncated, Data())
        try expectError(.truncated, Data([1, 0, 0]))
    }

    @Test func headerLongerThanFileIsTruncated() throws {
        try expectError(.truncated, rawSafeTensors(header: "{}", data: [], headerLength: 4096))
    }

    @Test func hugeHeaderLengthIsCorrupt() throws {
        try expectError(.corruptHeader, rawSafeTensors(header: "{}", data: [], headerLength: 100_000_001))
    }

    @Test func garbageHeaderIsCorrupt() throws {
        try expectError(.corruptHeader, rawSafeTensors(header: #"{"a": [1, 2"#, data: []))
        try expectError(.corruptHeader, rawSafeTensors(header: "[1, 2]", data: []))
    }

    @Test func missingDataIsTruncated() throws {
        let h = #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        try expectError(.truncated, rawSafeTensors(header: h, data: [UInt8](repeating: 0, count: 10)))
    }

    @Test func extraBytesAfterTheLastTensorAreRejected() throws {
        let h = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        try expectError(.trailingBytes, rawSafeTensors(header: h, data: [UInt8](repeating: 0, count: 12)))
    }

    @Test func gapsOverlapsAndWrongSizesAreBadOffsets() throws {
        let gap = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        try expectError(.badOffsets, rawSafeTensors(header: gap, data: [UInt8](repeating: 0, count: 8)))
        let overlap = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        try expectError(.badOffsets, rawSafeTensors(header: overlap, data: [UInt8](repeating: 0, count: 8)))
        let size = #"{"x":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"#
        try expectError(.badOffsets, rawSafeTensors(header: size, data: [UInt8](repeating: 0, count: 8)))
    }

    @Test func unknownDTypeAndBadEntriesAreRejected() throws {
        try expectError(.unknownDType, rawSafeTensors(header: #"{"x":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))
        try expectError(.badEntry, rawSafeTensors(header: #"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        try expectError(.badEntry, rawSafeTensors(header: #"{"x":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]))
    }

    @Test func missingFileIsUnreadable() {
        #expect(throws: WeightError.self) { try SafeTensorsFile(path: "/nonexistent/x.safetensors") }
    }

    @Test func shardedIndexServesTensorsFromEachShard() throws {
        let dir = try TempDir()
        try SafeTensorsWriter.write(tensors: [("a", [2], [1, 2])], to: dir.path("m-00001-of-00002.safetensors"))
        try SafeTensorsWriter.write(tensors: [("b", [1], [3])], to: dir.path("m-00002-of-00002.safetensors"))
        let index = #"{"metadata":{"total_size":12},"weight_map":{"a":"m-00001-of-00002.safetensors","b":"m-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: dir.path("m.safetensors.index.json"))
        let s = try ShardedWeights(indexURL: dir.path("m.safetensors.index.json"))
        #expect(values(try s.weight("a")) == [1, 2])
        #expect(values(try s.weight("b")) == [3])
        #expect(s.names == ["a", "b"] && s.shards.count == 2 && !s.contains("c"))

        let wrong = #"{"weight_map":{"a":"m-00002-of-00002.safetensors"}}"#
        try Data(wrong.utf8).write(to: dir.path("bad.index.json"))
        #expect(throws: WeightError.self) { try ShardedWeights(indexURL: dir.path("bad.index.json")) }
        let missing = #"{"weight_map":{"a":"gone.safetensors"}}"#
        try Data(missing.utf8).write(to: dir.path("missing.index.json"))
        #expect(throws: WeightError.self) { try ShardedWeights(indexURL: dir.path("missing.index.json")) }
        let escape = #"{"weight_map":{"a":"../x.safetensors"}}"#
        try Data(escape.utf8).write(to: dir.path("escape.index.json"))
        #expect(throws: WeightError.self) { try ShardedWeights(indexURL: dir.path("escape.index.json")) }
    }

    @Test func truncatedCopyOfARealFixtureIsReportedNotCrashed() throws {
        let src = try #require(PipeFixtures.url("latent-dit/transformer/diffusion_pytorch_model.safetensors"))
        let full = try Data(contentsOf: src)
        #expect(try SafeTensorsFile(url: src).names.count > 10)
        try expectError(.truncated, full.prefix(full.count / 2), file: "diffusion_pytorch_model.safetensors")
        try expectError(.truncated, full.prefix(100), file: "diffusion_pytorch_model.safetensors")
    }
}

@Suite struct RNGFixtureTests {
    /// Every tensor of expected/rng.safetensors, bit for bit (Python lines in Fixtures/README.md).
    @Test func everyReferenceDrawMatchesBitForBit() throws {
        let f = try #require(try PipeFixtures.file("expected/rng.safetensors"))
        func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }
        func ref(_ n: String) throws -> [UInt32] { bits(try PipeFixtures.floats(f, n)) }
        func draw(_ seed: Int64, _ n: Int) -> [Float] { var g = TorchGenerator(seed: seed); return g.randn(count: n) }
        #expect(bits(draw(0, 4)) == (try ref("seed0_n4")))
        var g = TorchGenerator(seed: Int64(0))
        #expect(bits(g.randn(count: 1) + g.randn(count: 1)) == (try ref("seed0_n1_twice")))
        #expect(bits(draw(0, 16)) == (try ref("seed0_n16")))
        #expect(bits(draw(42, 17)) == (try ref("seed42_n17")))
        #expect(bits(draw(33, 4096)) == (try ref("seed33_1x4x32x32")))
        #expect(bits(draw(4_294_967_301, 20)) == (try ref("seed4294967301_n20")))
        #expect(bits(draw(1, 512)) == (try ref("seed1_batch2x4x8x8_one_generator")))
        #expect(bits(draw(1, 256) + draw(2, 256)) == (try ref("seed1_2_batch2x4x8x8_generator_list")))
        #expect(bits(draw(3, 3 * 16 * 24)) == (try ref("seed3_1x3x16x24")))
    }
}
