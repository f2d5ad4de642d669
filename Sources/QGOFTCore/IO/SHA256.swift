import Foundation

/// Streaming SHA-256 (FIPS 180-4), in pure Swift so that checking a downloaded model needs no
/// crypto library.
///
/// Feed bytes with `update(_:)` in pieces of any size, then read the digest with `finalize()`.
/// Whole 64-byte blocks are compressed straight from the caller's memory; only a partial block
/// is copied into the internal buffer.
///
/// ```swift
/// var h = SHA256()
/// h.update(Data("ab".utf8)); h.update(Data("c".utf8))
/// h.hexDigest   // "ba7816bf..."
/// ```
public struct SHA256: Sendable {
    /// Bytes per block.
    public static let blockSize = 64
    /// Bytes per digest.
    public static let digestSize = 32

    /// Chaining value H0...H7.
    private var state: [UInt32] = SHA256.initialState
    /// The pending partial block; fewer than 64 bytes.
    private var pending: [UInt8] = []
    /// Total message length so far, in bytes.
    private var length: UInt64 = 0

    /// A hasher with nothing fed yet.
    public init() {
        pending.reserveCapacity(SHA256.blockSize)
    }

    /// Feeds the bytes of `data`.
    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update(bytes: $0) }
    }

    /// Feeds the bytes of `bytes`.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update(bytes: $0) }
    }

    /// Feeds the UTF-8 bytes of `string`.
    public mutating func update(_ string: String) {
        var s = string
        s.withUTF8 { update(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Feeds raw memory; the pointer is not kept.
    public mutating func update(bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var n = bytes.count
        length &+= UInt64(n)

        // Top up a partial block first.
        if !pending.isEmpty {
            let take = min(SHA256.blockSize - pending.count, n)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: take))
            p += take
            n -= take
            if pending.count == SHA256.blockSize {
                pending.withUnsafeBytes { blk in
                    if let base = blk.baseAddress { SHA256.compress(&state, base, blocks: 1) }
                }
                pending.removeAll(keepingCapacity: true)
            }
        }
        // Whole blocks straight from the caller's memory.
        let whole = n / SHA256.blockSize
        if whole > 0 {
            SHA256.compress(&state, p, blocks: whole)
            p += whole * SHA256.blockSize
            n -= whole * SHA256.blockSize
        }
        if n > 0 {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
        }
    }

    /// The digest of everything fed so far (32 bytes). Does not change the hasher, so more bytes
    /// may follow and a later call gives the digest of the longer message.
    public func finalize() -> [UInt8] {
        var copy = self
        let bitLength = length &* 8
        // Padding: 0x80, zeros up to 56 mod 64, then the bit length as big-endian UInt64.
        var tail: [UInt8] = [0x80]
        let afterOne = (pending.count + 1) % SHA256.blockSize
        let zeros = afterOne <= 56 ? 56 - afterOne : 64 + 56 - afterOne
        tail.append(contentsOf: repeatElement(0, count: zeros))
        for shift in stride(from: 56, through: 0, by: -8) {
            tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        let savedLength = copy.length
        copy.update(tail)
        copy.length = savedLength
        var out: [UInt8] = []
        out.reserveCapacity(SHA256.digestSize)
        for word in copy.state {
            out.append(UInt8(truncatingIfNeeded: word >> 24))
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            out.append(UInt8(truncatingIfNeeded: word >> 8))
            out.append(UInt8(truncatingIfNeeded: word))
        }
        return out
    }

    /// The digest as 64 lowercase hex digits, the format `sha256sum` prints.
    public var hexDigest: String { SHA256.hexString(finalize()) }

    /// SHA-256 of `data`, as lowercase hex.
    public static func hex(of data: Data) -> String {
        var h = SHA256()
        h.update(data)
        return h.hexDigest
    }

    /// SHA-256 of the UTF-8 bytes of `string`, as lowercase hex.
    public static func hex(of string: String) -> String {
        var h = SHA256()
        h.update(string)
        return h.hexDigest
    }

    /// SHA-256 of the file at `url`, read in 4 MiB chunks, as lowercase hex.
    /// - Throws: `AssetError` naming the file when it cannot be opened or read.
    public static func hex(fileAt url: URL, chunkSize: Int = 4 << 20) throws -> String {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw AssetError(.io, "cannot open \(url.path) to hash it: \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        var h = SHA256()
        while true {
            let chunk: Data?
            do {
                chunk = try handle.read(upToCount: max(chunkSize, SHA256.blockSize))
            } catch {
                throw AssetError(.io, "cannot read \(url.path): \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else { break }
            h.update(chunk)
        }
        return h.hexDigest
    }

    /// Lowercase hex of `bytes`.
    public static func hexString(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Compression function

    private static let initialState: [UInt32] = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]

    /// Round constants: first 32 bits of the fractional parts of the cube roots of the first 64 primes.
    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    /// Compresses `blocks` consecutive 64-byte blocks starting at `p` into `state`.
    private static func compress(_ state: inout [UInt32], _ p: UnsafeRawPointer, blocks: Int) {
        // Unsafe buffers keep bounds checks out of the round loop; the state lives in locals.
        k.withUnsafeBufferPointer { kk in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
                var h0 = state[0], h1 = state[1], h2 = state[2], h3 = state[3]
                var h4 = state[4], h5 = state[5], h6 = state[6], h7 = state[7]
                // `while` loops rather than `for in` ranges: a debug build would call the range
                // iterator on every round.
                var base = p
                for _ in 0..<blocks {
                    var t = 0
                    while t < 16 {
                        w[t] = UInt32(bigEndian: base.loadUnaligned(fromByteOffset: t * 4, as: UInt32.self))
                        t += 1
                    }
                    while t < 64 {
                        let x = w[t - 15], y = w[t - 2]
                        // σ0(x) = rotr7 ^ rotr18 ^ shr3, σ1(y) = rotr17 ^ rotr19 ^ shr10
                        let s0 = (x &>> 7 | x &<< 25) ^ (x &>> 18 | x &<< 14) ^ (x &>> 3)
                        let s1 = (y &>> 17 | y &<< 15) ^ (y &>> 19 | y &<< 13) ^ (y &>> 10)
                        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                        t += 1
                    }
                    var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
                    // Rotations and masking shifts are written out rather than calling a helper:
                    // `&>>` on UInt32 is transparent, so even a debug build hashes ~35 MB/s (release: ~190 MB/s).
                    t = 0
                    while t < 64 {
                        let s1 = (e &>> 6 | e &<< 26) ^ (e &>> 11 | e &<< 21) ^ (e &>> 25 | e &<< 7)
                        let ch = g ^ (e & (f ^ g))  // (e & f) ^ (~e & g)
                        let t1 = h &+ s1 &+ ch &+ kk[t] &+ w[t]
                        let s0 = (a &>> 2 | a &<< 30) ^ (a &>> 13 | a &<< 19) ^ (a &>> 22 | a &<< 10)
                        let maj = (a & b) | (c & (a | b))  // (a & b) ^ (a & c) ^ (b & c)
                        h = g
                        g = f
                        f = e
                        e = d &+ t1
                        d = c
                        c = b
                        b = a
                        a = t1 &+ s0 &+ maj
                        t += 1
                    }
                    h0 = h0 &+ a; h1 = h1 &+ b; h2 = h2 &+ c; h3 = h3 &+ d
                    h4 = h4 &+ e; h5 = h5 &+ f; h6 = h6 &+ g; h7 = h7 &+ h
                    base += 64
                }
                state[0] = h0; state[1] = h1; state[2] = h2; state[3] = h3
                state[4] = h4; state[5] = h5; state[6] = h6; state[7] = h7
            }
        }
    }
}
