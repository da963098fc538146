// The contract's table of bad job messages: each must be refused with its code and a message that
// names the problem. JobsTests checks it against the contract module; WorkerTests sends every row to a
// real worker and checks each is answered or dead-lettered.
import Foundation
import Testing
import Jobs

/// One job message that must be refused.
public struct BadInput: Sendable, CustomTestStringConvertible {
    public var name: String
    public var body: [UInt8]
    public var messageID: String?
    public var code: FailureCode
    public var poison: Bool
    /// Words the message must contain: the field, the value, the rule.
    public var mentions: [String]

    public init(_ name: String, _ body: String, _ code: FailureCode, _ mentions: [String], poison: Bool = false,
         messageID: String? = "msg-1") {
        self.init(name, bytes: Array(body.utf8), code, mentions, poison: poison, messageID: messageID)
    }

    public init(_ name: String, bytes: [UInt8], _ code: FailureCode, _ mentions: [String], poison: Bool = false,
         messageID: String? = "msg-1") {
        self.name = name
        self.body = bytes
        self.messageID = messageID
        self.code = code
        self.poison = poison
        self.mentions = mentions
    }

    public var testDescription: String { name }
}

private let longName = String(repeating: "a", count: 65)
public let badInputs: [BadInput] = [
    // Poison: not JSON, or not an object.
    BadInput("not JSON at all", "hello", .invalidRequest, ["not JSON"], poison: true),
    BadInput("empty body", "", .invalidRequest, ["not JSON", "empty"], poison: true),
    BadInput("a JSON array", "[1,2]", .invalidRequest, ["JSON object", "array"], poison: true),
    BadInput("a JSON string", "\"red circle\"", .invalidRequest, ["JSON object", "string"], poison: true),
    BadInput("a JSON null", "null", .invalidRequest, ["JSON object", "null"], poison: true),
    BadInput("truncated object", "{\"prompt\": \"red circle\"", .invalidRequest, ["not JSON", "end of input"], poison: true),
    BadInput("invalid UTF-8", bytes: Array("{\"prompt\":\"".utf8) + [0xFF, 0xFE] + Array("\"}".utf8),
             .invalidRequest, ["not JSON", "UTF-8"], poison: true),
    BadInput("text after the object", "{\"prompt\":\"red circle\"} x", .invalidRequest, ["not JSON", "after"], poison: true),
    BadInput("nesting 100 deep", String(repeating: "[", count: 100), .invalidRequest, ["not JSON", "nesting"], poison: true),
    BadInput("single quotes", "{'prompt': 'red circle'}", .invalidRequest, ["not JSON"], poison: true),
    BadInput("trailing comma", "{\"prompt\": \"red circle\",}", .invalidRequest, ["not JSON"], poison: true),
    // Version.
    BadInput("v is 2", "{\"v\":2,\"prompt\":\"red circle\"}", .unsupported, ["v=2", "v=1"]),
    BadInput("v is a string", "{\"v\":\"1\",\"prompt\":\"red circle\"}", .invalidRequest, ["\"v\"", "string \"1\""]),
    BadInput("v is a float", "{\"v\":1.0,\"prompt\":\"red circle\"}", .invalidRequest, ["\"v\"", "1.0"]),
    // Unknown and duplicate fields.
    BadInput("misspelt seed", "{\"prompt\":\"red circle\",\"sede\":1}", .invalidRequest, ["unknown field", "\"sede\"", "did you mean \"seed\""]),
    BadInput("unknown field", "{\"prompt\":\"red circle\",\"loras\":[]}", .invalidRequest, ["unknown field", "\"loras\""]),
    BadInput("seed twice", "{\"prompt\":\"red circle\",\"seed\":1,\"seed\":2}", .invalidRequest, ["\"seed\"", "more than once"]),
    // id.
    BadInput("empty id", "{\"id\":\"\",\"prompt\":\"red circle\"}", .invalidRequest, ["\"id\"", "1 to 128"]),
    BadInput("id with a space", "{\"id\":\"my job\",\"prompt\":\"red circle\"}", .invalidRequest, ["\"id\"", "\"my job\""]),
    BadInput("id with a slash", "{\"id\":\"a/b\",\"prompt\":\"red circle\"}", .invalidRequest, ["\"id\"", "\"a/b\""]),
    BadInput("id of 129 characters", "{\"id\":\"\(String(repeating: "x", count: 129))\",\"prompt\":\"red circle\"}",
             .invalidRequest, ["\"id\"", "1 to 128"]),
    BadInput("id is a number", "{\"id\":7,\"prompt\":\"red circle\"}", .invalidRequest, ["\"id\"", "must be a string", "number 7"]),
    BadInput("message_id not a valid id", "{\"prompt\":\"red circle\"}", .invalidRequest, ["message_id", "\"bad id!\""],
             messageID: "bad id!"),
    // model.
    BadInput("model not served", "{\"model\":\"sdxl\",\"prompt\":\"a cat\"}", .unsupported, ["\"sdxl\"", "tiny-shapes"]),
    BadInput("model is a number", "{\"model\":5}", .invalidRequest, ["\"model\"", "must be a string"]),
    // prompt and class_id.
    BadInput("prompt of 2001 characters", "{\"prompt\":\"\(String(repeating: "r", count: 2001))\"}", .invalidRequest,
             ["\"prompt\"", "2001", "2000"]),
    BadInput("prompt not a label", "{\"prompt\":\"purple hexagon\"}", .invalidRequest, ["\"purple hexagon\"", "not a label", "red circle"]),
    BadInput("prompt and class_id", "{\"prompt\":\"red circle\",\"class_id\":1}", .invalidRequest, ["\"prompt\"", "\"class_id\"", "not both"]),
    BadInput("class_id too big", "{\"class_id\":4}", .invalidRequest, ["\"class_id\"", "0 to 3", "got 4"]),
    BadInput("class_id negative", "{\"class_id\":-1}", .invalidRequest, ["\"class_id\"", "got -1"]),
    BadInput("class_id a string", "{\"class_id\":\"3\"}", .invalidRequest, ["\"class_id\"", "integer", "string \"3\""]),
    BadInput("neither prompt nor class_id", "{\"seed\":1}", .invalidRequest, ["class-conditional", "\"prompt\"", "\"class_id\""]),
    BadInput("negative_prompt on a class model", "{\"prompt\":\"red circle\",\"negative_prompt\":\"blur\"}", .invalidRequest,
             ["\"negative_prompt\"", "class-conditional"]),
    BadInput("use_resolution_binning not a boolean", "{\"model\":\"tiny-text\",\"prompt\":\"a\",\"use_resolution_binning\":\"no\"}",
             .invalidRequest, ["\"use_resolution_binning\"", "true or false", "\"no\""]),
    BadInput("use_resolution_binning on a class model", "{\"prompt\":\"red circle\",\"use_resolution_binning\":false}", .invalidRequest,
             ["\"use_resolution_binning\"", "class-conditional"]),
    BadInput("text model without prompt", "{\"model\":\"tiny-text\"}", .invalidRequest, ["\"prompt\"", "required", "tiny-text"]),
    BadInput("class_id on a text model", "{\"model\":\"tiny-text\",\"prompt\":\"a cat\",\"class_id\":1}", .invalidRequest,
             ["\"class_id\"", "tiny-text"]),
    BadInput("negative_prompt too long", "{\"model\":\"tiny-text\",\"prompt\":\"a\",\"negative_prompt\":\"\(String(repeating: "n", count: 2001))\"}",
             .invalidRequest, ["\"negative_prompt\"", "2001"]),
    // width and height.
    BadInput("width not a multiple of 8", "{\"model\":\"tiny-text\",\"prompt\":\"a\",\"width\":100}", .invalidRequest,
             ["\"width\"", "multiple of 8", "100"]),
    BadInput("width 0", "{\"prompt\":\"red circle\",\"width\":0}", .invalidRequest, ["\"width\"", "got 0"]),
    BadInput("height negative", "{\"prompt\":\"red circle\",\"height\":-64}", .invalidRequest, ["\"height\"", "-64"]),
    BadInput("width a string", "{\"prompt\":\"red circle\",\"width\":\"64\"}", .invalidRequest, ["\"width\"", "string \"64\""]),
    BadInput("width a fraction", "{\"prompt\":\"red circle\",\"width\":64.5}", .invalidRequest, ["\"width\"", "integer", "64.5"]),
    BadInput("width an exponent", "{\"prompt\":\"red circle\",\"width\":6.4e1}", .invalidRequest, ["\"width\"", "6.4e1"]),
    BadInput("width beyond 64 bits", "{\"prompt\":\"red circle\",\"width\":99999999999999999999}", .invalidRequest,
             ["\"width\"", "out of range", "99999999999999999999"]),
    BadInput("size the model does not serve", "{\"prompt\":\"red circle\",\"width\":96,\"height\":96}", .unsupported,
             ["96x96", "tiny-shapes", "64x64"]),
    BadInput("over the largest class", "{\"model\":\"tiny-text\",\"prompt\":\"a\",\"width\":2048,\"height\":1024}", .tooLarge,
             ["2048x1024", "\"large\"", "1048576"]),
    BadInput("sides whose product overflows", "{\"model\":\"tiny-text\",\"prompt\":\"a\",\"width\":4294967296,\"height\":4294967296}",
             .tooLarge, ["4294967296x4294967296", "too many", "\"large\""]),
    // steps, guidance, sampler.
    BadInput("steps 0", "{\"prompt\":\"red circle\",\"steps\":0}", .invalidRequest, ["\"steps\"", "1 to 200", "got 0"]),
    BadInput("steps 201", "{\"prompt\":\"red circle\",\"steps\":201}", .invalidRequest, ["\"steps\"", "got 201"]),
    BadInput("guidance 31", "{\"prompt\":\"red circle\",\"guidance\":31}", .invalidRequest, ["\"guidance\"", "0 to 30", "31"]),
    BadInput("guidance negative", "{\"prompt\":\"red circle\",\"guidance\":-0.5}", .invalidRequest, ["\"guidance\"", "-0.5"]),
    BadInput("guidance a string", "{\"prompt\":\"red circle\",\"guidance\":\"high\"}", .invalidRequest, ["\"guidance\"", "string \"high\""]),
    BadInput("guidance overflows", "{\"prompt\":\"red circle\",\"guidance\":1e400}", .invalidRequest, ["\"guidance\"", "1e400"]),
    BadInput("cache_threshold negative", "{\"prompt\":\"red circle\",\"cache_threshold\":-0.1}", .invalidRequest,
             ["\"cache_threshold\"", "0 (off) to 1", "-0.1"]),
    BadInput("cache_threshold over 1", "{\"prompt\":\"red circle\",\"cache_threshold\":1.5}", .invalidRequest,
             ["\"cache_threshold\"", "0 (off) to 1", "1.5"]),
    BadInput("cache_threshold a string", "{\"prompt\":\"red circle\",\"cache_threshold\":\"fast\"}", .invalidRequest,
             ["\"cache_threshold\"", "string \"fast\""]),
    BadInput("cache_threshold on a text model", "{\"model\":\"tiny-text\",\"prompt\":\"a\",\"cache_threshold\":0.1}", .unsupported,
             ["\"cache_threshold\"", "\"tiny-text\"", "class-conditional"]),
    BadInput("sampler unknown", "{\"prompt\":\"red circle\",\"sampler\":\"dpm++\"}", .unsupported, ["\"dpm++\"", "euler, heun"]),
    // seed, seed_ref, save_seed_as.
    BadInput("seed negative", "{\"prompt\":\"red circle\",\"seed\":-1}", .invalidRequest, ["\"seed\"", "-1", "18446744073709551615"]),
    BadInput("seed a fraction", "{\"prompt\":\"red circle\",\"seed\":1.5}", .invalidRequest, ["\"seed\"", "1.5"]),
    BadInput("seed 2^64", "{\"prompt\":\"red circle\",\"seed\":18446744073709551616}", .invalidRequest, ["\"seed\"", "18446744073709551616"]),
    BadInput("seed a string", "{\"prompt\":\"red circle\",\"seed\":\"42\"}", .invalidRequest, ["\"seed\"", "string \"42\""]),
    BadInput("seed and seed_ref", "{\"prompt\":\"red circle\",\"seed\":1,\"seed_ref\":\"good\"}", .invalidRequest, ["\"seed\"", "\"seed_ref\"", "not both"]),
    BadInput("seed_ref a path", "{\"prompt\":\"red circle\",\"seed_ref\":\"../etc/passwd\"}", .invalidRequest, ["\"seed_ref\"", "\"../etc/passwd\""]),
    BadInput("save_seed_as starts with a dot", "{\"prompt\":\"red circle\",\"save_seed_as\":\".hidden\"}", .invalidRequest,
             ["\"save_seed_as\"", "\".hidden\""]),
    BadInput("save_seed_as is ..", "{\"prompt\":\"red circle\",\"save_seed_as\":\"..\"}", .invalidRequest, ["\"save_seed_as\"", "\"..\""]),
    BadInput("save_seed_as ends with a dot", "{\"prompt\":\"red circle\",\"save_seed_as\":\"best.\"}", .invalidRequest, ["\"save_seed_as\"", "\"best.\""]),
    BadInput("save_seed_as with a slash", "{\"prompt\":\"red circle\",\"save_seed_as\":\"a/b\"}", .invalidRequest, ["\"save_seed_as\"", "\"a/b\""]),
    BadInput("save_seed_as of 65 characters", "{\"prompt\":\"red circle\",\"save_seed_as\":\"\(longName)\"}", .invalidRequest,
             ["\"save_seed_as\"", "1 to 64"]),
    BadInput("save_seed_as empty", "{\"prompt\":\"red circle\",\"save_seed_as\":\"\"}", .invalidRequest, ["\"save_seed_as\"", "1 to 64"]),
    // count, preview, progress_every.
    BadInput("count 0", "{\"prompt\":\"red circle\",\"count\":0}", .invalidRequest, ["\"count\"", "1 to 16", "got 0"]),
    BadInput("count 17", "{\"prompt\":\"red circle\",\"count\":17}", .invalidRequest, ["\"count\"", "got 17"]),
    BadInput("preview a string", "{\"prompt\":\"red circle\",\"preview\":\"yes\"}", .invalidRequest, ["\"preview\"", "true or false", "\"yes\""]),
    BadInput("preview a number", "{\"prompt\":\"red circle\",\"preview\":1}", .invalidRequest, ["\"preview\"", "number 1"]),
    BadInput("progress_every 0", "{\"prompt\":\"red circle\",\"progress_every\":0}", .invalidRequest, ["\"progress_every\"", "at least 1", "got 0"]),
    // webhook (the fixture worker holds the secret "hook"), output (it has a file store, no s3 store).
    BadInput("webhook not an object", "{\"prompt\":\"red circle\",\"webhook\":\"https://example.com/hook\"}", .invalidRequest,
             ["\"webhook\"", "must be an object"]),
    BadInput("webhook without url", "{\"prompt\":\"red circle\",\"webhook\":{\"secret_ref\":\"hook\"}}", .invalidRequest,
             ["\"webhook.url\"", "required"]),
    BadInput("webhook url not a URL", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"not a url\",\"secret_ref\":\"hook\"}}",
             .invalidRequest, ["\"webhook.url\"", "\"not a url\""]),
    BadInput("webhook http to a non-loopback host", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"http://example.com/hook\",\"secret_ref\":\"hook\"}}",
             .invalidRequest, ["\"webhook.url\"", "https", "loopback", "\"example.com\""]),
    BadInput("webhook ftp", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"ftp://127.0.0.1/hook\",\"secret_ref\":\"hook\"}}",
             .invalidRequest, ["\"webhook.url\"", "\"ftp\""]),
    BadInput("webhook url with credentials", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"https://u:p@example.com/\",\"secret_ref\":\"hook\"}}",
             .invalidRequest, ["\"webhook.url\"", "credentials"]),
    BadInput("webhook unknown event", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"https://example.com/h\",\"events\":[\"done\"],\"secret_ref\":\"hook\"}}",
             .invalidRequest, ["\"webhook.events\"", "\"done\"", "completed"]),
    BadInput("webhook no events", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"https://example.com/h\",\"events\":[],\"secret_ref\":\"hook\"}}",
             .invalidRequest, ["\"webhook.events\"", "empty"]),
    BadInput("webhook events a string", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"https://example.com/h\",\"events\":\"completed\",\"secret_ref\":\"hook\"}}",
             .invalidRequest, ["\"webhook.events\"", "list"]),
    BadInput("webhook without secret_ref", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"https://example.com/h\"}}",
             .invalidRequest, ["\"webhook.secret_ref\"", "required"]),
    BadInput("webhook unknown secret_ref", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"https://example.com/h\",\"secret_ref\":\"nope\"}}",
             .invalidRequest, ["\"webhook.secret_ref\"", "\"nope\"", "webhook.secrets_file"]),
    BadInput("webhook with the secret itself", "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"https://example.com/h\",\"secret\":\"s3cr3t\"}}",
             .invalidRequest, ["unknown field", "\"webhook.secret\"", "secret_ref"]),
    BadInput("output not an object", "{\"prompt\":\"red circle\",\"output\":\"s3\"}", .invalidRequest, ["\"output\"", "must be an object"]),
    BadInput("output unknown store", "{\"prompt\":\"red circle\",\"output\":{\"store\":\"gcs\"}}", .invalidRequest,
             ["\"output.store\"", "\"gcs\"", "inline, file, s3"]),
    BadInput("output store a number", "{\"prompt\":\"red circle\",\"output\":{\"store\":3}}", .invalidRequest,
             ["\"output.store\"", "must be a string"]),
    BadInput("output s3 store without a bucket", "{\"prompt\":\"red circle\",\"output\":{\"store\":\"s3\"}}", .unsupported,
             ["\"s3\"", "output.s3.bucket"]),
    // deadline.
    BadInput("deadline not a time", "{\"prompt\":\"red circle\",\"deadline\":\"tomorrow\"}", .invalidRequest, ["\"deadline\"", "RFC 3339", "\"tomorrow\""]),
    BadInput("deadline 30 February", "{\"prompt\":\"red circle\",\"deadline\":\"2027-02-30T00:00:00Z\"}", .invalidRequest,
             ["\"deadline\"", "2027-02-30"]),
    BadInput("deadline without zone", "{\"prompt\":\"red circle\",\"deadline\":\"2027-03-01T00:00:00\"}", .invalidRequest, ["\"deadline\""]),
    BadInput("deadline passed", "{\"prompt\":\"red circle\",\"deadline\":\"2020-01-01T00:00:00Z\"}", .expired, ["deadline", "2020-01-01"]),
]
