import Foundation
import Jobs

/// The catalog every Jobs test validates against: a class-conditional model that serves four
/// sizes and a text model that serves any multiple of 8.
public enum Fixtures {
    public static let shapes = ModelInfo(
        name: "tiny-shapes", kind: .classConditional,
        labels: ["red circle", "blue square", "green triangle", "tench, Tinca tinca"], numClasses: 4,
        granularity: 8, defaultWidth: 64, defaultHeight: 64, defaultSteps: 20, defaultGuidance: 4,
        defaultSampler: "euler", samplers: ["euler", "heun"],
        sizes: [ImageSize(width: 32, height: 32), ImageSize(width: 64, height: 64),
                ImageSize(width: 128, height: 128), ImageSize(width: 128, height: 64)])

    public static let text = ModelInfo(
        name: "tiny-text", kind: .text, granularity: 8, defaultWidth: 512, defaultHeight: 512,
        defaultSteps: 30, defaultGuidance: 7.5, defaultSampler: "ddim", samplers: ["ddim", "euler"])

    public static let classes = [
        SizeClass(name: "small", maxPixels: 256 * 256),
        SizeClass(name: "medium", maxPixels: 512 * 512),
        SizeClass(name: "large", maxPixels: 1024 * 1024),
    ]

    public static let catalog = Catalog(models: [shapes, text], defaultModel: "tiny-shapes", sizeClasses: classes,
                                        delivery: DeliveryCatalog(webhookSecrets: ["hook", "shop-hooks"], fileStore: true, s3Store: false))

    public static let now = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z

    public static func decode(_ body: String, messageID: String? = "msg-1") throws(JobRejection) -> Job {
        try Job.decode(body: Array(body.utf8), properties: JobProperties(messageID: messageID, replyTo: "amq.gen-1",
                                                                              correlationID: "c-1"),
                       catalog: catalog, now: now)
    }
}
