import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The safetensors layout (https://huggingface.co/docs/safetensors):
//
//   bytes 0..<8        N, the header length, little-endian UInt64
//   bytes 8..<8+N      UTF-8 JSON object: {"__metadata__": {str: str}?,
//                        name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
//                      (writers pad it with trailing spaces to a multiple of 8 bytes)
//   bytes 8+N..<size   the data section; `data_offsets` are relative to its start.
//
// Every tensor is stored row-major, little-endian. Nothing in a file is trusted until the whole
// header has been checked against the file size, so later reads never need bounds checks.

/// Element types a safetensors header may name.
///
/// `floatTensor` converts F32, F16, BF16 and F64; `integerTensor` reads the integer types and
/// BOOL. The FP8 types are recognised, so such a file opens and lists, but not converted.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16
    case I64, I32, I16, I8
    case U64, U32, U16, U8
    case BOOL
    case F8_E4M3, F8_E5M2

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
        }
    }

    /// Whether `floatTensor` can convert this type to `Float`.
    public var isConvertibleToFloat: Bool {
        switch self {
        case .F64, .F32, .F16, .BF16: return true
        default: return false
        }
    }

    /// Whether `integerTensor` can read this type as `Int64`.
    public var isInteger: Bool {
        switch self {
        case .I64, .I32, .I16, .I8, .U64, .U32, .U16, .U8, .BOOL: return true
        default: return false
        }
    }
}

/// One tensor listed in a safetensors header, after validation.
public struct SafetensorsEntry: Sendable, Equatable {
    /// The tensor's key in the header, e.g. `encoder.layer.0.attention.self.query.weight`.
    public let name: String
    /// Element type as stored.
    public let dtype: SafetensorsDType
    /// Dimensions, outermost first; `[]` is a scalar (one element).
    public let shape: [Int]
    /// Byte range within the data section (not the file); its length is elements * `dtype.byteSize`.
    public let byteRange: Range<Int>

    /// Number of elements (product of `shape`; validated not to overflow).
    public var elementCount: Int { shape.reduce(1, *) }

    public init(name: String, dtype: SafetensorsDType, shape: [Int], byteRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteRange = byteRange
    }
}

/// A failure to read or write a safetensors file. The description is `"<file path>: <problem>"`.
public struct SafetensorsError: Error, LocalizedError, Sendable, CustomStringConvertible {
    /// Path of the file concerned.
    public let path: String
    /// What is wrong, in words, often with a hint for fixing it.
    public let problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var errorDescription: String? { "\(path): \(problem)" }
    public var description: String { "\(path): \(problem)" }
}

/// A safetensors file mapped read-only into memory, with a validated header.
///
/// `init` checks the whole header against the file (lengths, JSON syntax, dtypes, shapes, sizes,
/// bounds, overlaps) and throws `SafetensorsError` on the first problem; once it returns, every
/// entry's bytes are known to lie inside the mapping. Tensor data are copied out on request.
///
/// Immutable after `init` and therefore safe to share across threads. The file must not be
/// truncated while it is open: like any mapping, that would fault on access.
public final class SafetensorsFile: @unchecked Sendable {
    /// The file this was opened from.
    public let url: URL
    /// The `__metadata__` map, empty when the header has none.
    public let metadata: [String: String]
    /// Bytes of the data section not covered by any tensor (allowed, but worth a note: the
    /// reference writer never leaves gaps).
    public let unusedDataByteCount: Int

    /// Every tensor, sorted by name.
    public var entries: [SafetensorsEntry] { sortedEntries }

    private let sortedEntries: [SafetensorsEntry]
    private let entriesByName: [String: SafetensorsEntry]
    /// Start of the mapping (the whole file).
    private let base: UnsafeRawPointer
    private let mappedLength: Int
    /// The bytes are a heap copy (`init(bytes:)`), not a mapping.
    private let heapCopy: Bool
    /// Offset of the data section within the file (8 + header length).
    private let dataStart: Int

    /// Largest header we accept; real headers are kilobytes (MiniLM-L6: 11 KiB).
    public static let maximumHeaderLength = 100 * 1024 * 1024

    /// Maps `url` and validates its header. Throws `SafetensorsError` naming the file and the problem.
    public convenience init(url: URL) throws {
        try self.init(url: url, mapping: MappedFile(path: url.path))
    }

    /// A copy of `bytes` (a whole safetensors file), validated as `init(url:)` does; `url` names
    /// it in errors. For parsing without a file (the fuzz targets).
    public convenience init(bytes: Data, url: URL) throws {
        try self.init(url: url, mapping: MappedFile(copying: bytes))
    }

    private init(url: URL, mapping: MappedFile) throws {
        self.url = url
        let path = url.path
        func fail(_ problem: String) -> SafetensorsError { SafetensorsError(path: path, problem: problem) }

        // From here on, an error thrown before `self` is complete must unmap.
        do {
            let size = mapping.length
            guard size >= 8 else {
                throw fail("file is \(size) bytes, shorter than the 8-byte header length; it is truncated or not a safetensors file")
            }
            let headerLength64 = UInt64(littleEndian: mapping.base.loadUnaligned(as: UInt64.self))
            guard headerLength64 <= UInt64(Self.maximumHeaderLength) else {
                throw fail("header length \(headerLength64) exceeds the \(Self.maximumHeaderLength)-byte limit; the file is corrupt or not a safetensors file")
            }
            let headerLength = Int(headerLength64)
            guard 8 + headerLength <= size else {
                throw fail("header length \(headerLength) runs past the end of the \(size)-byte file; the file is truncated")
            }
            let header = UnsafeRawBufferPointer(start: mapping.base + 8, count: headerLength)
            let dataSize = size - 8 - headerLength
            let parsed = try SafetensorsHeader.parse(header, dataSize: dataSize, fail: fail)
            self.metadata = parsed.metadata
            self.sortedEntries = parsed.entries
            // Names are unique (the parser refuses duplicate keys); keep the first anyway rather than trap.
            self.entriesByName = Dictionary(parsed.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            self.unusedDataByteCount = parsed.unusedDataByteCount
            self.dataStart = 8 + headerLength
        } catch {
            mapping.unmap()
            throw error
        }
        self.base = UnsafeRawPointer(mapping.base)
        self.mappedLength = mapping.length
        self.heapCopy = mapping.heapCopy
    }

    deinit {
        MappedFile.unmap(base: UnsafeMutableRawPointer(mutating: base), length: mappedLength, heapCopy: heapCopy)
    }

    /// The entry called `name`, or nil.
    public func entry(_ name: String) -> SafetensorsEntry? { entriesByName[name] }

    /// The tensor `name` as `Float`s with the entry's shape. F32 is copied bit for bit; F16 and
    /// BF16 convert exactly (subnormals, infinities and NaN payloads included); F64 rounds to
    /// nearest. Integer, BOOL and FP8 tensors are refused.
    public func floatTensor(_ name: String) throws -> Tensor {
        let e = try requireEntry(name)
        guard e.dtype.isConvertibleToFloat else {
            throw error("tensor '\(name)' has dtype \(e.dtype.rawValue), but it is read as floating-point values (F32, F16, BF16 or F64); the file does not hold the weights qgoft expects under that name")
        }
        let n = e.elementCount
        let t = Tensor(e.shape)
        let src = base + dataStart + e.byteRange.lowerBound
        switch e.dtype {
        case .F32:
            // The data section need not be 4-byte aligned, so copy bytes rather than cast pointers.
            memcpy(t.data, src, n * 4)
            #if _endian(big)
            let words = UnsafeMutableRawPointer(t.data).assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { words[i] = UInt32(littleEndian: words[i]) }
            #endif
        case .F16:
            for i in 0..<n {
                let h = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                t.data[i] = SafetensorsConversion.float(fromHalfBits: h)
            }
        case .BF16:
            for i in 0..<n {
                let h = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                t.data[i] = SafetensorsConversion.float(fromBFloat16Bits: h)
            }
        case .F64:
            for i in 0..<n {
                let bits = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                t.data[i] = Float(Double(bitPattern: bits))
            }
        default:
            break  // excluded by the guard above
        }
        return t
    }

    /// The integer (or BOOL, as 0/1) tensor `name`, row-major, widened to `Int64`.
    /// Throws for float types, for U64 values above `Int64.max`, and for BOOL bytes other than 0 and 1.
    public func integerTensor(_ name: String) throws -> [Int64] {
        let e = try requireEntry(name)
        guard e.dtype.isInteger else {
            throw error("tensor '\(name)' has dtype \(e.dtype.rawValue), but it is read as integers (I64, I32, I16, I8, U64, U32, U16, U8 or BOOL); the file does not hold what qgoft expects under that name")
        }
        let n = e.elementCount
        let src = base + dataStart + e.byteRange.lowerBound
        var out = [Int64](repeating: 0, count: n)
        for i in 0..<n {
            switch e.dtype {
            case .I64: out[i] = Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
            case .I32: out[i] = Int64(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
            case .I16: out[i] = Int64(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
            case .I8: out[i] = Int64(src.load(fromByteOffset: i, as: Int8.self))
            case .U64:
                let v = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                guard let w = Int64(exactly: v) else {
                    throw error("tensor '\(name)' element \(i) is \(v), too large for Int64")
                }
                out[i] = w
            case .U32: out[i] = Int64(UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            case .U16: out[i] = Int64(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            case .U8: out[i] = Int64(src.load(fromByteOffset: i, as: UInt8.self))
            case .BOOL:
                let b = src.load(fromByteOffset: i, as: UInt8.self)
                guard b <= 1 else { throw error("tensor '\(name)' element \(i) is byte \(b), not a BOOL (0 or 1)") }
                out[i] = Int64(b)
            default:
                break  // excluded by the guard above
            }
        }
        return out
    }

    private func requireEntry(_ name: String) throws -> SafetensorsEntry {
        guard let e = entriesByName[name] else {
            throw error("no tensor named '\(name)' among the file's \(sortedEntries.count) tensors")
        }
        return e
    }

    private func error(_ problem: String) -> SafetensorsError { SafetensorsError(path: url.path, problem: problem) }
}

// MARK: - Element conversions

/// Bit-exact widenings of 16-bit floats to `Float`, written out so they can be tested on their own.
enum SafetensorsConversion {
    /// IEEE binary16 -> binary32. Every half value (subnormals, ±0, ±inf, NaN payloads) is
    /// representable in binary32, so the result is exact.
    static func float(fromHalfBits h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h) & 0x3FF
        switch exponent {
        case 0:
            // ±0 or subnormal: mantissa * 2^-24, exact since mantissa < 2^10.
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        case 0x1F:
            // ±inf (mantissa 0) or NaN with its payload moved to the top of the float mantissa.
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        default:
            // Normal: rebias the exponent from 15 to 127.
            return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
        }
    }

    /// bfloat16 -> binary32: bfloat16 is the top half of a binary32, so this is a shift.
    static func float(fromBFloat16Bits h: UInt16) -> Float {
        Float(bitPattern: UInt32(h) << 16)
    }
}

// MARK: - Mapping

/// A read-only private mapping of a whole file. Unmapped by `SafetensorsFile.deinit`, or by
/// `unmap()` when `init` fails half way.
private struct MappedFile {
    let base: UnsafeMutableRawPointer
    let length: Int
    /// `base` was allocated (an empty file, or `init(copying:)`), not mapped.
    var heapCopy = false

    /// A heap copy of `data`, released like a mapping.
    init(copying data: Data) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(data.count, 1), alignment: 8)
        data.withUnsafeBytes { raw in
            if let src = raw.baseAddress, !raw.isEmpty { p.copyMemory(from: src, byteCount: raw.count) }
        }
        base = p
        length = data.count
        heapCopy = true
    }

    init(path: String) throws {
        func fail(_ problem: String) -> SafetensorsError { SafetensorsError(path: path, problem: problem) }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw fail("cannot open: \(MappedFile.lastError())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw fail("cannot stat: \(MappedFile.lastError())") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw fail("not a regular file") }
        let size = Int(info.st_size)
        if size == 0 {
            // mmap refuses zero lengths; an empty file gets a one-byte dummy so init can report it.
            base = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8)
            length = 0
            heapCopy = true
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw fail("cannot map \(size) bytes: \(MappedFile.lastError())")
        }
        base = p
        length = size
    }

    func unmap() { MappedFile.unmap(base: base, length: length, heapCopy: heapCopy) }

    static func unmap(base: UnsafeMutableRawPointer, length: Int, heapCopy: Bool) {
        if heapCopy {
            base.deallocate()
        } else {
            munmap(base, length)
        }
    }

    static func lastError() -> String { String(cString: strerror(errno)) }
}
