import CVulkan
import Foundation

/// One compiled shader variant, as `Tools/build-shaders.py` writes it into `QwenShaders`.
public struct ShaderSource: Sendable {
    public let name: String
    public let spirvBase64: StaticString
    /// Storage buffers at bindings 0..<bindingCount of descriptor set 0.
    public let bindingCount: Int
    public let pushConstantBytes: Int
    /// Device features the variant needs (see `DeviceInfo.knownRequirements`).
    public let requirements: [String]

    public init(name: String, spirvBase64: StaticString, bindingCount: Int, pushConstantBytes: Int,
                requirements: [String]) {
        self.name = name
        self.spirvBase64 = spirvBase64
        self.bindingCount = bindingCount
        self.pushConstantBytes = pushConstantBytes
        self.requirements = requirements
    }

    func spirvWords() throws -> [UInt32] {
        let data = spirvBase64.withUTF8Buffer { Data(base64Encoded: Data($0)) }
        guard let data, data.count % 4 == 0, !data.isEmpty else {
            throw VulkanError(.invalidUsage, "shader '\(name)': embedded SPIR-V is not valid base64 of 32-bit words; "
                + "rerun python3 Tools/build-shaders.py")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
    }
}

/// A compute pipeline for one shader with one set of specialization constants (constant_id i = value i),
/// with its descriptor-set and pipeline layouts. Get one from `VulkanDevice.pipeline(_:specialization:)`.
public final class ComputePipeline: @unchecked Sendable {
    public let shader: ShaderSource
    public let specialization: [UInt32]
    let context: DeviceContext
    let handle: VkPipeline
    let layout: VkPipelineLayout
    let setLayout: VkDescriptorSetLayout

    init(context: DeviceContext, shader: ShaderSource, specialization: [UInt32], cache: VkPipelineCache?) throws {
        let device = context.handle
        let info = context.info
        guard shader.pushConstantBytes <= info.maxPushConstantsSize else {
            throw VulkanError(.unsupported, "shader '\(shader.name)' needs \(shader.pushConstantBytes) bytes of push "
                + "constants; the device allows \(info.maxPushConstantsSize)")
        }
        let missing = info.missing(shader.requirements)
        guard missing.isEmpty else {
            throw VulkanError(.unsupported, "shader '\(shader.name)' needs \(missing.joined(separator: ", ")), "
                + "which device \(info.index) (\(info.name)) lacks; choose another variant")
        }
        self.shader = shader
        self.specialization = specialization
        self.context = context
        let words = try shader.spirvWords()

        var bindings = (0..<shader.bindingCount).map { i -> VkDescriptorSetLayoutBinding in
            var binding = VkDescriptorSetLayoutBinding()
            binding.binding = UInt32(i)
            binding.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
            binding.descriptorCount = 1
            binding.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT.rawValue
            return binding
        }
        var setLayout: VkDescriptorSetLayout?
        try bindings.withUnsafeMutableBufferPointer { pointer in
            var create = VkDescriptorSetLayoutCreateInfo()
            create.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
            create.bindingCount = UInt32(pointer.count)
            create.pBindings = UnsafePointer(pointer.baseAddress)
            try vkCheck(vkCreateDescriptorSetLayout(device, &create, nil, &setLayout),
                        "vkCreateDescriptorSetLayout for '\(shader.name)'")
        }
        self.setLayout = setLayout!

        var pushRange = VkPushConstantRange()
        pushRange.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT.rawValue
        pushRange.size = UInt32(shader.pushConstantBytes)
        var layout: VkPipelineLayout?
        var setLayouts: [VkDescriptorSetLayout?] = [setLayout]
        let layoutResult: VkResult = withUnsafePointer(to: &pushRange) { rangePointer in
            var create = VkPipelineLayoutCreateInfo()
            create.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
            create.setLayoutCount = 1
            create.pushConstantRangeCount = shader.pushConstantBytes > 0 ? 1 : 0
            create.pPushConstantRanges = shader.pushConstantBytes > 0 ? rangePointer : nil
            return setLayouts.withUnsafeMutableBufferPointer { pointer in
                create.pSetLayouts = UnsafePointer(pointer.baseAddress)
                return vkCreatePipelineLayout(device, &create, nil, &layout)
            }
        }
        guard layoutResult == VK_SUCCESS else {
            vkDestroyDescriptorSetLayout(device, self.setLayout, nil)
            throw VulkanError(result: layoutResult, call: "vkCreatePipelineLayout for '\(shader.name)'")
        }
        let pipelineLayout = layout!
        self.layout = pipelineLayout

        var module: VkShaderModule?
        let moduleResult: VkResult = words.withUnsafeBufferPointer { pointer in
            var create = VkShaderModuleCreateInfo()
            create.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            create.codeSize = pointer.count * 4
            create.pCode = pointer.baseAddress
            return vkCreateShaderModule(device, &create, nil, &module)
        }
        guard moduleResult == VK_SUCCESS, let module else {
            vkDestroyPipelineLayout(device, self.layout, nil)
            vkDestroyDescriptorSetLayout(device, self.setLayout, nil)
            throw VulkanError(result: moduleResult, call: "vkCreateShaderModule for '\(shader.name)'")
        }
        defer { vkDestroyShaderModule(device, module, nil) }

        var entries = specialization.indices.map { i -> VkSpecializationMapEntry in
            VkSpecializationMapEntry(constantID: UInt32(i), offset: UInt32(i * 4), size: 4)
        }
        var values = specialization
        var pipeline: VkPipeline?
        let pipelineResult: VkResult = "main".withCString { entryName in
            entries.withUnsafeMutableBufferPointer { entryPointer in
                values.withUnsafeMutableBytes { valueBytes in
                    var specializationInfo = VkSpecializationInfo()
                    specializationInfo.mapEntryCount = UInt32(entryPointer.count)
                    specializationInfo.pMapEntries = UnsafePointer(entryPointer.baseAddress)
                    specializationInfo.dataSize = valueBytes.count
                    specializationInfo.pData = UnsafeRawPointer(valueBytes.baseAddress)
                    return withUnsafePointer(to: &specializationInfo) { specializationPointer in
                        var stage = VkPipelineShaderStageCreateInfo()
                        stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                        stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                        stage.module = module
                        stage.pName = entryName
                        stage.pSpecializationInfo = specialization.isEmpty ? nil : specializationPointer
                        var create = VkComputePipelineCreateInfo()
                        create.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                        create.stage = stage
                        create.layout = pipelineLayout
                        return vkCreateComputePipelines(device, cache, 1, &create, nil, &pipeline)
                    }
                }
            }
        }
        guard pipelineResult == VK_SUCCESS, let pipeline else {
            vkDestroyPipelineLayout(device, self.layout, nil)
            vkDestroyDescriptorSetLayout(device, self.setLayout, nil)
            throw VulkanError(result: pipelineResult, call: "vkCreateComputePipelines for '\(shader.name)' "
                + "specialization \(specialization)")
        }
        handle = pipeline
    }

    deinit {
        vkDestroyPipeline(context.handle, handle, nil)
        vkDestroyPipelineLayout(context.handle, layout, nil)
        vkDestroyDescriptorSetLayout(context.handle, setLayout, nil)
    }
}
