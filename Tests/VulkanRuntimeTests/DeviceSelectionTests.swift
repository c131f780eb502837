import XCTest
import Foundation
@testable import VulkanRuntime

/// How a device is picked. What happens with no driver at all (a typed error, one explained line, no crash)
/// is checked end to end by QwenVKTests.ErrorMessageTests.testNoVulkanDriver, which runs `qwenvk` in a child
/// process with the loader pointed at a missing driver file.
final class DeviceSelectionTests: XCTestCase {
    func testSelectionPrefersDiscreteAndHonoursOverrides() throws {
        let template = try TestDevice.get().info
        let infos = [DeviceInfo.Kind.cpu, .integrated, .discrete, .discrete].enumerated().map {
            template.replacing(index: $0, kind: $1)
        }
        XCTAssertEqual(try VulkanDevice.selectIndex(infos, preferredIndex: nil, environment: [:]), 2)
        XCTAssertEqual(try VulkanDevice.selectIndex(infos, preferredIndex: 0, environment: ["QWENVK_DEVICE": "1"]), 0)
        XCTAssertEqual(try VulkanDevice.selectIndex(infos, preferredIndex: nil, environment: ["QWENVK_DEVICE": "1"]), 1)
        XCTAssertThrowsError(try VulkanDevice.selectIndex(infos, preferredIndex: 9, environment: [:])) {
            XCTAssertEqual(($0 as? VulkanError)?.code, .noDevice)
        }
        XCTAssertThrowsError(try VulkanDevice.selectIndex(infos, preferredIndex: nil, environment: ["QWENVK_DEVICE": "gpu"])) {
            XCTAssertEqual(($0 as? VulkanError)?.code, .invalidUsage)
        }
        XCTAssertThrowsError(try VulkanDevice.selectIndex([], preferredIndex: nil, environment: [:])) {
            XCTAssertEqual(($0 as? VulkanError)?.code, .noDevice)
        }
    }
}

extension DeviceInfo {
    /// A copy that claims another enumeration index and device type, for selection tests.
    func replacing(index: Int, kind: Kind) -> DeviceInfo {
        let encoded = try! JSONEncoder().encode(self)
        var object = try! JSONSerialization.jsonObject(with: encoded) as! [String: Any]
        object["index"] = index
        object["kind"] = kind.rawValue
        return try! JSONDecoder().decode(DeviceInfo.self, from: JSONSerialization.data(withJSONObject: object))
    }
}
