/// A GGUF file (or split set) that cannot be used; every case names the file and the item at fault.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    case badMagic(String, found: UInt32)
    case unsupportedVersion(String, version: UInt32)
    case truncated(String, what: String, offset: Int)
    case countTooLarge(String, what: String, count: UInt64)
    case invalidValueType(String, key: String, type: UInt32)
    case nestingTooDeep(String, key: String)
    case duplicateKey(String, key: String)
    case badAlignment(String, alignment: Int)
    case duplicateTensor(String, tensor: String)
    case unknownTensorType(String, tensor: String, type: UInt32)
    case badDimensions(String, tensor: String, dimensions: [UInt64], reason: String)
    case misalignedTensor(String, tensor: String, offset: UInt64, alignment: Int)
    case tensorOutOfFile(String, tensor: String, offset: UInt64, byteCount: Int, dataBytes: Int)
    case missingMetadata(String, key: String)
    case wrongMetadataType(String, key: String, expected: String)
    case badSplit(String, reason: String)

    public var description: String {
        switch self {
        case let .badMagic(path, found):
            return "\(path): not a GGUF file (magic 0x\(String(found, radix: 16)), expected 'GGUF')"
        case let .unsupportedVersion(path, version):
            let hint = version > 0xFFFF ? " (a big-endian GGUF? only little-endian files are supported)" : ""
            return "\(path): GGUF version \(version) is not supported (2 and 3 are)\(hint)"
        case let .truncated(path, what, offset):
            return "\(path): file ends inside \(what) at byte \(offset); the file is truncated or corrupt"
        case let .countTooLarge(path, what, count):
            return "\(path): \(what) count \(count) cannot fit in the file; the header is corrupt"
        case let .invalidValueType(path, key, type):
            return "\(path): metadata '\(key)' has unknown value type \(type)"
        case let .nestingTooDeep(path, key):
            return "\(path): metadata '\(key)' nests arrays deeper than \(GGUFFile.maxArrayNesting) levels"
        case let .duplicateKey(path, key):
            return "\(path): metadata key '\(key)' appears twice"
        case let .badAlignment(path, alignment):
            return "\(path): general.alignment \(alignment) is not a positive power of two"
        case let .duplicateTensor(path, tensor):
            return "\(path): tensor '\(tensor)' appears twice"
        case let .unknownTensorType(path, tensor, type):
            return "\(path): tensor '\(tensor)' has unknown ggml type \(type) (a newer llama.cpp format?)"
        case let .badDimensions(path, tensor, dimensions, reason):
            return "\(path): tensor '\(tensor)' has invalid dimensions \(dimensions): \(reason)"
        case let .misalignedTensor(path, tensor, offset, alignment):
            return "\(path): tensor '\(tensor)' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .tensorOutOfFile(path, tensor, offset, byteCount, dataBytes):
            return "\(path): tensor '\(tensor)' (\(byteCount) bytes at data offset \(offset)) lies outside the "
                + "\(dataBytes)-byte data section; the file is truncated or corrupt"
        case let .missingMetadata(path, key):
            return "\(path): required metadata '\(key)' is missing"
        case let .wrongMetadataType(path, key, expected):
            return "\(path): metadata '\(key)' should be \(expected)"
        case let .badSplit(path, reason):
            return "\(path): split GGUF set: \(reason)"
        }
    }
}

/// A safetensors file or sharded checkpoint that cannot be used.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case truncated(String, what: String)
    case badHeader(String, reason: String)
    case unsupportedDType(String, tensor: String, dtype: String)
    case badTensor(String, tensor: String, reason: String)
    case badIndex(String, reason: String)

    public var description: String {
        switch self {
        case let .truncated(path, what):
            return "\(path): file ends inside \(what); the file is truncated or corrupt"
        case let .badHeader(path, reason):
            return "\(path): invalid safetensors header: \(reason)"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)' has dtype \(dtype); supported are F32, F16 and BF16"
        case let .badTensor(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .badIndex(path, reason):
            return "\(path): invalid shard index: \(reason)"
        }
    }
}

/// Problems above the container format: opening files, the model's configuration and its tensor set.
public enum ModelFileError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(String, reason: String)
    case unrecognizedModel(String, reason: String)
    case badConfig(String, reason: String)
    case missingTensor(String)
    case wrongShape(String, expected: [Int], found: [Int])
    case unexpectedType(String, type: GGMLType, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open \(path): \(reason)"
        case let .unrecognizedModel(path, reason):
            return "\(path): not a Qwen3.5 model this runtime can load: \(reason)"
        case let .badConfig(path, reason):
            return "\(path): invalid model configuration: \(reason)"
        case let .missingTensor(name):
            return "tensor '\(name)' is missing from the model files"
        case let .wrongShape(name, expected, found):
            return "tensor '\(name)' has shape \(found), the configuration requires \(expected) (ggml order)"
        case let .unexpectedType(name, type, reason):
            return "tensor '\(name)' is stored as \(type): \(reason)"
        }
    }
}
