// libFuzzer entry points for the qgoft fuzz binary (see Targets.swift and run.sh). The target is
// chosen once per process by QGOFT_FUZZ_TARGET.

import Foundation

private let selectedTarget: @Sendable (Data) -> Void = {
    let name = ProcessInfo.processInfo.environment["QGOFT_FUZZ_TARGET"] ?? ""
    guard let t = fuzzTargets.first(where: { $0.name == name }) else {
        let list = fuzzTargets.map { "  \($0.name): \($0.what)" }.joined(separator: "\n")
        FileHandle.standardError.write(Data("set QGOFT_FUZZ_TARGET to one of:\n\(list)\n".utf8))
        exit(2)
    }
    return t.run
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    _ = selectedTarget
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let data = count == 0 || bytes == nil ? Data() : Data(bytes: bytes!, count: count)
    selectedTarget(data)
    return 0
}
