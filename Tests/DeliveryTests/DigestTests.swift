import Delivery
import Testing

// SHA-256 against FIPS 180-4's examples (NIST CSRC "SHA256.pdf"), HMAC-SHA256 against RFC 4231.
struct DigestTests {
    @Test func sha256MatchesTheNISTExamples() {
        #expect(Digest.hex(Digest.sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.hex(Digest.sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digest.hex(Digest.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Digest.hex(Digest.sha256([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func hmacSHA256MatchesRFC4231() {
        // Test case 1: key 0x0b * 20, "Hi There".
        #expect(Digest.hex(Digest.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), "Hi There"))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 2: key "Jefe".
        #expect(Digest.hex(Digest.hmacSHA256(key: Array("Jefe".utf8), "what do ya want for nothing?"))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Test case 3: key 0xaa * 20, data 0xdd * 50.
        #expect(Digest.hex(Digest.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50)))
                == "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe")
        // Test case 6: a 131-byte key (longer than the block) is hashed first.
        #expect(Digest.hex(Digest.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First"))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }
}
