#!/usr/bin/env python3
"""Compile the GLSL compute shaders ahead of time into Swift sources that embed base64 SPIR-V.

Every Shaders/manifest/<family>.json lists variants:
    { "variants": [ { "name": "matvec_q4_K", "source": "matvec.comp", "defines": {"QTYPE": "Q4_K"},
                      "bindings": 3, "push": 32, "requires": [], "compilerExtensions": [] } ] }
Each variant is compiled with `glslc --target-env=vulkan1.2 -O`, validated with `spirv-val`, and written to
Sources/QwenShaders/Generated/<Family>.swift as `extension Shaders { public static let <name> = ShaderSource(...) }`.

`compilerExtensions` names GLSL extensions that not every glslc accepts (integer dot product, cooperative
matrix, ...). When the installed glslc lacks one, the variant is skipped with a note; such variants are always
declared as `ShaderSource?` so that Swift code compiles either way and picks them only when present.

`--check` regenerates in memory and fails if any committed generated file differs (or is left over).
Errors name the offending file and line.
"""

import argparse
import base64
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHADERS = MANIFESTS = GENERATED = ""


def set_root(root):
    global ROOT, SHADERS, MANIFESTS, GENERATED
    ROOT = os.path.abspath(root)
    SHADERS = os.path.join(ROOT, "Shaders")
    MANIFESTS = os.path.join(SHADERS, "manifest")
    GENERATED = os.path.join(ROOT, "Sources", "QwenShaders", "Generated")

TARGET_ENV = "vulkan1.2"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KNOWN_KEYS = {"name", "source", "defines", "bindings", "push", "requires", "compilerExtensions"}
# Keep in step with DeviceInfo.knownRequirements (Sources/VulkanRuntime/DeviceInfo.swift).
KNOWN_REQUIREMENTS = {
    "subgroupBasic", "subgroupVote", "subgroupArithmetic", "subgroupBallot", "subgroupShuffle",
    "subgroupShuffleRelative", "subgroupClustered", "subgroupQuad", "float16", "int8", "int16", "int64",
    "storage16bit", "storage8bit", "integerDotProduct", "cooperativeMatrix", "bufferDeviceAddress",
}


class BuildError(Exception):
    """A problem the user must fix; the message starts with `file:line:`."""


def rel(path):
    """Paths in messages are relative to the package root, like the paths in the manifests."""
    return os.path.relpath(path, ROOT)


def line_of(text, needle):
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else 1


def family_name(manifest_path):
    stem = os.path.splitext(os.path.basename(manifest_path))[0]
    parts = re.split(r"[^A-Za-z0-9]+", stem)
    name = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not name or not IDENTIFIER.match(name):
        raise BuildError(f"{rel(manifest_path)}:1: cannot derive a Swift file name from '{stem}'")
    return name


def load_manifest(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BuildError(f"{rel(path)}:{e.lineno}: invalid JSON: {e.msg}")
    variants = data.get("variants") if isinstance(data, dict) else None
    if not isinstance(variants, list):
        raise BuildError(f"{rel(path)}:1: expected an object with a \"variants\" list")
    checked = []
    for v in variants:
        where = f"{rel(path)}:{line_of(text, json.dumps(v.get('name', '')) if isinstance(v, dict) else '')}"
        if not isinstance(v, dict):
            raise BuildError(f"{where}: each variant must be an object")
        unknown = set(v) - KNOWN_KEYS
        if unknown:
            raise BuildError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
        name, source = v.get("name"), v.get("source")
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise BuildError(f"{where}: variant name must be a Swift identifier, got {name!r}")
        if not isinstance(source, str) or not os.path.isfile(os.path.join(SHADERS, source)):
            raise BuildError(f"{where}: variant '{name}': source {source!r} not found in Shaders/")
        bindings, push = v.get("bindings"), v.get("push", 0)
        if not isinstance(bindings, int) or bindings < 0:
            raise BuildError(f"{where}: variant '{name}': \"bindings\" must be a non-negative integer")
        if not isinstance(push, int) or push < 0 or push % 4 != 0 or push > 128:
            raise BuildError(f"{where}: variant '{name}': \"push\" must be a multiple of 4 in 0...128 bytes")
        defines = v.get("defines", {})
        if not isinstance(defines, dict):
            raise BuildError(f"{where}: variant '{name}': \"defines\" must be an object")
        requires = v.get("requires", [])
        extensions = v.get("compilerExtensions", [])
        for key, value in (("requires", requires), ("compilerExtensions", extensions)):
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise BuildError(f"{where}: variant '{name}': \"{key}\" must be a list of strings")
        unknown = sorted(set(requires) - KNOWN_REQUIREMENTS)
        if unknown:
            raise BuildError(f"{where}: variant '{name}': unknown requirement(s) {unknown}; "
                             f"known: {sorted(KNOWN_REQUIREMENTS)}")
        checked.append(dict(name=name, source=source, defines={str(k): str(x) for k, x in defines.items()},
                            bindings=bindings, push=push, requires=requires, extensions=extensions, where=where))
    return checked


def find_tool(name):
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"{name}: not found on PATH (Debian: apt-get install glslc spirv-tools)")
    return path


class Compiler:
    def __init__(self):
        self.glslc = find_tool("glslc")
        self.spirv_val = find_tool("spirv-val")
        self.extension_support = {}

    def supports_extension(self, extension):
        if extension not in self.extension_support:
            probe = f"#version 450\n#extension {extension} : require\nvoid main() {{}}\n"
            result = subprocess.run([self.glslc, f"--target-env={TARGET_ENV}", "-fshader-stage=compute",
                                     "-", "-o", os.devnull], input=probe, capture_output=True, text=True)
            self.extension_support[extension] = result.returncode == 0
        return self.extension_support[extension]

    def compile(self, variant, workdir):
        source = os.path.join(SHADERS, variant["source"])
        output = os.path.join(workdir, variant["name"] + ".spv")
        command = [self.glslc, f"--target-env={TARGET_ENV}", "-O", "-fshader-stage=compute", "-I", SHADERS]
        command += [f"-D{k}={v}" if v != "" else f"-D{k}" for k, v in sorted(variant["defines"].items())]
        # Run from the package root with a relative path so glslc's "file:line: error" names Shaders/x.comp.
        command += [rel(source), "-o", output]
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            defines = " ".join(f"{k}={v}" for k, v in sorted(variant["defines"].items())) or "no defines"
            raise BuildError(f"{result.stderr.strip()}\n{variant['where']}: variant '{variant['name']}' "
                             f"({defines}) failed to compile")
        result = subprocess.run([self.spirv_val, "--target-env", TARGET_ENV, output],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"{rel(source)}:1: spirv-val rejected variant '{variant['name']}':\n"
                             f"{result.stderr.strip() or result.stdout.strip()}")
        with open(output, "rb") as f:
            return f.read()


def swift_string_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def render(manifest_path, entries):
    lines = [f"// Generated by Tools/build-shaders.py from Shaders/manifest/{os.path.basename(manifest_path)}."
             " Do not edit; rerun the tool.",
             "import VulkanRuntime", "", "extension Shaders {"]
    for variant, spirv, note in entries:
        doc = f"    /// `{variant['source']}`"
        if variant["defines"]:
            doc += " with " + ", ".join(f"{k}={v}" if v else k for k, v in sorted(variant["defines"].items()))
        lines.append(doc)
        optional = bool(variant["extensions"])
        type_suffix = ": ShaderSource?" if optional else ""
        if spirv is None:
            lines.append(f"    /// Not built: {note}")
            lines.append(f"    public static let {variant['name']}{type_suffix} = nil")
            continue
        lines.append(f"    public static let {variant['name']}{type_suffix} = ShaderSource(")
        lines.append(f"        name: {json.dumps(variant['name'])},")
        lines.append(f"        spirvBase64: \"{base64.b64encode(spirv).decode('ascii')}\",")
        lines.append(f"        bindingCount: {variant['bindings']}, pushConstantBytes: {variant['push']},")
        lines.append(f"        requirements: {swift_string_list(variant['requires'])})")
    lines.append("}")
    return "\n".join(lines) + "\n"


def build_all():
    """Returns {generated file path: contents} for every manifest."""
    manifests = sorted(os.path.join(MANIFESTS, f) for f in os.listdir(MANIFESTS) if f.endswith(".json")) \
        if os.path.isdir(MANIFESTS) else []
    compiler = Compiler()
    outputs, seen = {}, {}
    with tempfile.TemporaryDirectory() as workdir, \
            concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        plans = []
        for manifest in manifests:
            variants = load_manifest(manifest)
            for variant in variants:
                if variant["name"] in seen:
                    raise BuildError(f"{variant['where']}: variant name '{variant['name']}' already used at "
                                     f"{seen[variant['name']]}")
                seen[variant["name"]] = variant["where"]
            plans.append((manifest, variants))
        jobs = {}
        for manifest, variants in plans:
            for variant in variants:
                missing = [e for e in variant["extensions"] if not compiler.supports_extension(e)]
                if missing:
                    jobs[variant["name"]] = f"the installed glslc does not accept {', '.join(missing)}"
                    print(f"note: skipping {variant['name']}: {jobs[variant['name']]}", file=sys.stderr)
                else:
                    jobs[variant["name"]] = pool.submit(compiler.compile, variant, workdir)
        for manifest, variants in plans:
            entries = []
            for variant in variants:
                job = jobs[variant["name"]]
                if isinstance(job, str):
                    entries.append((variant, None, job))
                else:
                    entries.append((variant, job.result(), None))
            outputs[os.path.join(GENERATED, family_name(manifest) + ".swift")] = render(manifest, entries)
    return outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if a generated file is stale or left over, without writing anything")
    parser.add_argument("--root", default=ROOT, help="package root (default: the one holding this tool)")
    args = parser.parse_args()
    set_root(args.root)
    try:
        outputs = build_all()
    except BuildError as e:
        print(e, file=sys.stderr)
        return 1
    existing = {os.path.join(GENERATED, f) for f in os.listdir(GENERATED) if f.endswith(".swift")} \
        if os.path.isdir(GENERATED) else set()
    if args.check:
        problems = []
        for path, text in sorted(outputs.items()):
            current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if current != text:
                problems.append(f"{rel(path)}:1: stale or missing; run python3 Tools/build-shaders.py")
        for path in sorted(existing - set(outputs)):
            problems.append(f"{rel(path)}:1: no manifest generates this file; delete it")
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"build-shaders: {len(outputs)} generated file(s) up to date")
        return 1 if problems else 0
    os.makedirs(GENERATED, exist_ok=True)
    for path in sorted(existing - set(outputs)):
        os.remove(path)
    for path, text in sorted(outputs.items()):
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {rel(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
