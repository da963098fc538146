import TestSupport
import Testing
@testable import Jobs

@Test func jobsDifferingOnlyInPerRowSettingsShareABatchKey() throws {
    let a = try Fixtures.decode("{\"prompt\":\"red circle\",\"seed\":1,\"guidance\":4}")
    let b = try Fixtures.decode("{\"class_id\":2,\"seed\":99,\"guidance\":7,\"count\":3,\"preview\":true,\"save_seed_as\":\"x\"}")
    let c = try Fixtures.decode("{\"prompt\":\"blue square\",\"seed_ref\":\"good\",\"guidance\":1.5}")
    #expect(a.batchKey == b.batchKey)
    #expect(a.batchKey == c.batchKey)
}

@Test func guidanceOnAndOffDoNotShareABatch() throws {
    let guided = try Fixtures.decode("{\"prompt\":\"red circle\",\"guidance\":1.01}")
    let unguided = try Fixtures.decode("{\"prompt\":\"red circle\",\"guidance\":1}")
    let zero = try Fixtures.decode("{\"prompt\":\"red circle\",\"guidance\":0}")
    #expect(guided.batchKey != unguided.batchKey)
    #expect(unguided.batchKey == zero.batchKey)
}

@Test func modelSizeStepsAndSamplerSeparateBatches() throws {
    let base = try Fixtures.decode("{\"prompt\":\"red circle\"}").batchKey
    for other in ["{\"prompt\":\"red circle\",\"width\":32,\"height\":32}",
                  "{\"prompt\":\"red circle\",\"width\":128,\"height\":64}",
                  "{\"prompt\":\"red circle\",\"steps\":21}",
                  "{\"prompt\":\"red circle\",\"sampler\":\"heun\"}",
                  "{\"model\":\"tiny-text\",\"prompt\":\"red circle\",\"width\":64,\"height\":64,\"steps\":20,\"sampler\":\"euler\",\"guidance\":4}"] {
        #expect(try Fixtures.decode(other).batchKey != base, "\(other)")
    }
}

@Test func resolutionBinningOnAndOffDoNotShareABatch() throws {
    let text = "{\"model\":\"tiny-text\",\"prompt\":\"a red circle\",\"width\":64,\"height\":64"
    let unsaid = try Fixtures.decode(text + "}"), on = try Fixtures.decode(text + ",\"use_resolution_binning\":true}")
    let off = try Fixtures.decode(text + ",\"use_resolution_binning\":false}")
    #expect(unsaid.useResolutionBinning == true && off.useResolutionBinning == false)   // the model's default: on
    #expect(unsaid.batchKey == on.batchKey)
    #expect(on.batchKey != off.batchKey)
    #expect(try Fixtures.decode("{\"prompt\":\"red circle\"}").useResolutionBinning == nil)
}
