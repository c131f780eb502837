import Foundation
import ModelFiles
import VulkanRuntime

/// A failure said for a person: one sentence of what went wrong and, where there is one, what to do.
///
/// Every typed error of the stack (files, model, tokenizer, engine, Vulkan) maps to a problem naming
/// the file or quantity at fault and a fix a user can act on; other errors keep their own description.
///
/// ```swift
/// catch {
///     FileHandle.standardError.write(Data("error: \(ErrorExplanation(error))\n".utf8))
/// }
/// ```
public struct ErrorExplanation: Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, naming the file or quantity at fault.
    public let problem: String
    /// What to do about it, or nil when there is nothing obvious.
    public let fix: String?

    /// An explanation from its two parts.
    public init(problem: String, fix: String?) {
        self.problem = problem
        self.fix = fix
    }

    /// The explanation of `error`.
    public init(_ error: Error) {
        self = Self.explain(error)
    }

    /// `problem; fix` as one line.
    public var description: String { fix.map { "\(problem); \($0)" } ?? problem }

    /// Apt packages that provide a Vulkan loader and a driver on Debian and Ubuntu (lavapipe runs on any CPU).
    public static let vulkanPackages = "libvulkan1 mesa-vulkan-drivers"

    private static let modelFix = "pass -m a Qwen3.5 .gguf file (the first part of a split set) or a Hugging Face folder "
        + "with config.json and *.safetensors"
    private static let quantFix = "use a file whose tensors are F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q6_K, "
        + "IQ4_NL, IQ4_XS or MXFP4 (for example a Q4_K_M or Q8_0 GGUF)"
    private static let memoryFix = "use a smaller context (-c), a smaller quantization or a device with more memory"

    private static func explain(_ error: Error) -> ErrorExplanation {
        switch error {
        case let e as QwenVKError:
            switch e {
            case .modelNotFound(let path):
                return ErrorExplanation(problem: "model file not found: \(path)", fix: modelFix)
            case .noTokenizer(let why):
                return ErrorExplanation(problem: "the model has no usable tokenizer (\(why))",
                                        fix: "pass the prompt as token ids (--tokens 1,2,3)")
            }
        case let e as ModelFileError:
            switch e {
            case let .cannotOpen(path, reason):
                return ErrorExplanation(problem: "cannot open \(path): \(reason)", fix: modelFix)
            case let .unrecognizedModel(path, reason):
                return ErrorExplanation(problem: "\(path) is not a Qwen3.5 model (\(reason))",
                                        fix: "QwenVK runs the Qwen3.5 family only (GGUF architecture qwen35 or qwen35moe); "
                                            + modelFix)
            case let .unexpectedType(tensor, type, reason):
                return ErrorExplanation(problem: "tensor '\(tensor)' is stored as \(type), which is not supported (\(reason))",
                                        fix: quantFix)
            case .badConfig, .missingTensor, .wrongShape:
                return ErrorExplanation(problem: "the model files are inconsistent: \(e)",
                                        fix: "re-download or re-convert the model")
            }
        case let e as GGUFError:
            switch e {
            case let .badMagic(path, _):
                return ErrorExplanation(problem: "\(path) is not a GGUF file", fix: modelFix)
            case let .unknownTensorType(path, tensor, type):
                return ErrorExplanation(problem: "\(path): tensor '\(tensor)' uses ggml quantization type \(type), "
                                            + "which this version does not know", fix: quantFix)
            case .truncated, .tensorOutOfFile:
                return ErrorExplanation(problem: e.description, fix: "the download is probably incomplete: download it again")
            default:
                return ErrorExplanation(problem: e.description, fix: "re-download or re-convert the model")
            }
        case let e as SafetensorsError:
            if case let .unsupportedDType(path, tensor, dtype) = e {
                return ErrorExplanation(problem: "\(path): tensor '\(tensor)' has dtype \(dtype), which is not supported",
                                        fix: "use a BF16, F16 or F32 checkpoint, or a GGUF")
            }
            return ErrorExplanation(problem: e.description, fix: "re-download the model")
        case let e as EngineError:
            switch e {
            case let .insufficientMemory(what, needed, available):
                return ErrorExplanation(problem: "\(what) does not fit in device memory: needs \(formatBytes(needed)), "
                                            + "\(formatBytes(available)) available", fix: memoryFix)
            case let .unsupportedModel(why):
                if why.contains("kernels do not support") || why.contains("cannot be converted")
                    || why.contains("cannot dequantize") {
                    return ErrorExplanation(problem: "the model uses a quantization type this build cannot run: \(why)",
                                            fix: quantFix)
                }
                return ErrorExplanation(problem: "the model cannot be run: \(why)", fix: nil)
            case let .promptTooLong(tokens, context):
                return ErrorExplanation(problem: "the prompt needs \(tokens) tokens but the context holds \(context)",
                                        fix: "shorten the prompt or raise the context with -c")
            default:
                return ErrorExplanation(problem: e.description, fix: nil)
            }
        case let e as VulkanError:
            switch e.code {
            case .noLoader:
                // The runtime's message carries its own short fix after "; "; this one replaces it.
                let problem = e.message.components(separatedBy: "; ").first ?? e.message
                return ErrorExplanation(problem: problem,
                                        fix: "install one: sudo apt-get install \(vulkanPackages) (Debian/Ubuntu; "
                                            + "mesa-vulkan-drivers brings the lavapipe CPU device) or your GPU vendor's driver")
            case .noDevice where e.message.contains("does not exist"):
                return ErrorExplanation(problem: e.message, fix: "list the devices with `qwenvk devices`")
            case .noDevice:
                return ErrorExplanation(problem: "Vulkan found no device",
                                        fix: "install a driver: sudo apt-get install \(vulkanPackages) (Debian/Ubuntu) "
                                            + "or your GPU vendor's driver")
            case .outOfDeviceMemory:
                return ErrorExplanation(problem: "the device ran out of memory (\(e.message))", fix: memoryFix)
            default:
                return ErrorExplanation(problem: e.description, fix: nil)
            }
        case let e as TokenizerError:
            return ErrorExplanation(problem: e.description, fix: nil)
        case let e as ChatError:
            return ErrorExplanation(problem: e.description, fix: nil)
        default:
            return ErrorExplanation(problem: String(describing: error), fix: nil)
        }
    }

    /// Bytes in the unit a person reads quickly (MiB below 1 GiB, else GiB).
    public static func formatBytes(_ count: Int) -> String {
        let mib = Double(count) / 1_048_576
        return mib < 1024 ? String(format: "%.1f MiB", mib) : String(format: "%.2f GiB", mib / 1024)
    }
}
