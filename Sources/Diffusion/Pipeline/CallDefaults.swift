// How a text-to-image folder is meant to be called, from the `call` block of its `darkroom.json` (the diffusers files
// have no place for it). models/tiny-scenes, for one, is trained without Sana's complex_human_instruction and at sizes
// outside the resolution bins, so diffusers must be called with
// `use_resolution_binning=False, complex_human_instruction=None`; its darkroom.json says so and Darkroom follows it.
import Foundation

public struct CallDefaults: Sendable, Equatable, Decodable {
    /// `use_resolution_binning`; nil = not given (diffusers' default, on).
    public var binning: Bool?
    /// `complex_human_instruction`; nil = not given (Sana's default), [] = none (`null` in the file).
    public var complexHumanInstruction: [String]?
    /// `max_sequence_length`; nil = the family's default.
    public var maxSequenceLength: Int?

    enum CodingKeys: String, CodingKey {
        case binning = "use_resolution_binning", complexHumanInstruction = "complex_human_instruction"
        case maxSequenceLength = "max_sequence_length"
    }

    public init(binning: Bool? = nil, complexHumanInstruction: [String]? = nil, maxSequenceLength: Int? = nil) {
        self.binning = binning
        self.complexHumanInstruction = complexHumanInstruction
        self.maxSequenceLength = maxSequenceLength
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        binning = try c.decodeIfPresent(Bool.self, forKey: .binning)
        if c.contains(.complexHumanInstruction) {
            complexHumanInstruction = try c.decodeNil(forKey: .complexHumanInstruction)
                ? [] : try c.decode([String].self, forKey: .complexHumanInstruction)
        }
        maxSequenceLength = try c.decodeIfPresent(Int.self, forKey: .maxSequenceLength)
    }

    private struct File: Decodable { var call: CallDefaults? }

    /// The folder's `darkroom.json` `call` block; none when the file or the block is absent. A file that is there
    /// but does not parse is an error naming it.
    public static func read(folder: URL) throws -> CallDefaults {
        let url = folder.appendingPathComponent("darkroom.json")
        guard let data = FileManager.default.contents(atPath: url.path) else { return CallDefaults() }
        do {
            return try JSONDecoder().decode(File.self, from: data).call ?? CallDefaults()
        } catch {
            throw PipelineError(.badConfig, "\(url.path): the call block does not parse (\(error))")
        }
    }
}
