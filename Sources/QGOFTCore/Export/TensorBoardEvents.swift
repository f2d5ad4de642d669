import Foundation

/// The bytes of TensorBoard event files, encoded by hand: the few protobuf messages a scalar log
/// needs, and the TFRecord framing around them. No generated code: four messages, a handful of
/// fields.
///
/// From tensorboard/compat/proto/event.proto and summary.proto:
///
///     message Event   { double wall_time = 1; int64 step = 2;
///                       oneof what { string file_version = 3; ... Summary summary = 5; ... } }
///     message Summary { repeated Value value = 1; }
///     message Summary.Value { string node_name = 7; string tag = 1; SummaryMetadata metadata = 9;
///                             oneof value { float simple_value = 2; ... } }
///
/// A TFRecord is `uint64 length (LE)`, `uint32 masked_crc32c(length bytes)`, `data`,
/// `uint32 masked_crc32c(data)`, with masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8.
public enum TensorBoardEvents {
    /// The first event of every file.
    public static let fileVersion = "brain.Event:2"

    // MARK: protobuf wire format

    /// Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
    static func key(_ field: Int, _ wireType: Int, into out: inout [UInt8]) {
        varint(UInt64(field << 3 | wireType), into: &out)
    }

    static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func fixed64(_ value: UInt64, into out: inout [UInt8]) {
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: value >> (8 * k))) }
    }

    static func fixed32(_ value: UInt32, into out: inout [UInt8]) {
        for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: value >> (8 * k))) }
    }

    static func bytesField(_ field: Int, _ bytes: [UInt8], into out: inout [UInt8]) {
        key(field, 2, into: &out)
        varint(UInt64(bytes.count), into: &out)
        out.append(contentsOf: bytes)
    }

    /// `Summary.Value { tag = 1; simple_value = 2 }`.
    static func value(tag: String, simpleValue: Float) -> [UInt8] {
        var out: [UInt8] = []
        bytesField(1, Array(tag.utf8), into: &out)
        key(2, 5, into: &out)
        fixed32(simpleValue.bitPattern, into: &out)
        return out
    }

    /// The header of an `Event`: wall_time (field 1, double) and step (field 2, int64 varint;
    /// a negative step takes ten bytes, as protobuf writes int64). As proto3 serialisers do,
    /// zero values are left out (a reader takes a missing field as zero).
    static func eventHeader(wallTime: Double, step: Int64) -> [UInt8] {
        var out: [UInt8] = []
        if wallTime.bitPattern != 0 {
            key(1, 1, into: &out)
            fixed64(wallTime.bitPattern, into: &out)
        }
        if step != 0 {
            key(2, 0, into: &out)
            varint(UInt64(bitPattern: step), into: &out)
        }
        return out
    }

    /// `Event { wall_time, step = 0, file_version = "brain.Event:2" }`.
    public static func fileVersionEvent(wallTime: Double) -> [UInt8] {
        var out = eventHeader(wallTime: wallTime, step: 0)
        bytesField(3, Array(fileVersion.utf8), into: &out)
        return out
    }

    /// `Event { wall_time, step, summary { value { tag, simple_value } ... } }`.
    public static func scalarEvent(wallTime: Double, step: Int64, values: [(tag: String, value: Float)]) -> [UInt8] {
        var summary: [UInt8] = []
        for v in values { bytesField(1, value(tag: v.tag, simpleValue: v.value), into: &summary) }
        var out = eventHeader(wallTime: wallTime, step: step)
        bytesField(5, summary, into: &out)
        return out
    }

    // MARK: TFRecord framing

    /// `data` framed as one TFRecord.
    public static func record(_ data: [UInt8]) -> [UInt8] {
        var length: [UInt8] = []
        fixed64(UInt64(data.count), into: &length)
        var out = length
        fixed32(CRC32C.masked(length), into: &out)
        out.append(contentsOf: data)
        fixed32(CRC32C.masked(data), into: &out)
        return out
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord checksums its frames.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, wrapping.
    public static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
