// Puts a job's PNG where its `output.store` says, with bounded retries, and says where it went.
import Config
import Foundation
import Jobs

public final class ResultStores: Sendable {
    let file: FileStore?
    let s3: S3Store?
    let maxAttempts: Int
    /// Seconds before the second attempt; doubled for each further one.
    let firstBackoff: Double

    public init(config: DarkroomConfig, firstBackoff: Double = 0.5) {
        file = config.output.dir.map { FileStore(directory: $0) }
        s3 = config.output.s3.map { S3Store(config: $0) }
        maxAttempts = config.output.maxAttempts
        self.firstBackoff = firstBackoff
    }

    /// Stores one PNG of a job. `retried` is told of each failed attempt that will be tried again.
    /// Throws the last attempt's error once `maxAttempts` failed (or at once when retrying cannot help).
    public func store(_ png: [UInt8], jobID: String, index: Int, in store: ResultStore,
                      retried: @Sendable (DeliveryError, Int) -> Void = { _, _ in }) async throws(DeliveryError) -> StoredResult {
        let sha = Digest.hex(Digest.sha256(png))
        var attempt = 1
        while true {
            do throws(DeliveryError) {
                switch store {
                case .inline:
                    throw DeliveryError(.config, "inline results are not stored", retryable: false)
                case .file:
                    guard let file else { throw DeliveryError(.config, "the file store has no output.dir", retryable: false) }
                    let path = try file.write(jobID: jobID, index: index, png: png)
                    return StoredResult(store: .file, location: path, sha256: sha, bytes: png.count)
                case .s3:
                    guard let s3 else { throw DeliveryError(.config, "the s3 store has no [output.s3]", retryable: false) }
                    let key = s3.key(jobID: jobID, index: index)
                    let url = try await s3.put(key: key, png: png, sha256: sha)
                    return StoredResult(store: .s3, location: url, key: key, sha256: sha, bytes: png.count)
                }
            } catch {
                guard error.retryable, attempt < maxAttempts else { throw error }
                retried(error, attempt)
                try? await Task.sleep(for: .seconds(firstBackoff * Double(1 << (attempt - 1))))
                attempt += 1
            }
        }
    }
}
