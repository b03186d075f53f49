#!/usr/bin/env python3
"""The preconditions of the fused kernels' speed, read from the compiled library (no GPU needed).

For each architecture compiled into LIBRARY (cuobjdump -sass, -res-usage), every instantiation of
  tc_gemv_kernel   has tensor-core instructions (HMMA), streams its packed weights with 8- or
                   16-byte no-allocate loads (LDG.E.NA.64/128), and uses no local memory (STL/LDL:
                   register spills or local arrays), and its static shared memory is what the
                   launch planner counts (kGemvStaticShared);
  tc_rotation_kernel  (the GEMM path's OFT rotation) has tensor-core instructions;
  prepass_kernel,  use no local memory (tc_rotation_kernel too);
  view_gemv_kernel
  cayley_kernel    its static shared memory is kCayleyStaticShared (the planner's count).
Fails (exit 1) naming the kernel and the broken precondition.

    kernel_binary_check.py --cuobjdump PATH --source-dir DIR LIBRARY
"""
import argparse
import re
import subprocess
import sys


def constant(path, name):
    text = open(path).read()
    m = re.search(r"constexpr int " + name + r" = ([^;]+);", text)
    if not m:
        sys.exit(f"{path}: no constant {name}")
    return m.group(1)


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return dict(zip(names, out.splitlines()))


def sass_functions(cuobjdump, library):
    """{(arch, mangled): [instruction lines]}"""
    text = subprocess.run([cuobjdump, "-sass", library], capture_output=True, text=True, check=True).stdout
    functions, arch, current = {}, None, None
    for line in text.splitlines():
        m = re.search(r"arch = (sm_\d+)", line)
        if m:
            arch = m.group(1)
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            current = (arch, m.group(1))
            functions[current] = []
        elif current and "/*" in line:
            functions[current].append(line)
    return functions


def static_shared(cuobjdump, library):
    """{(arch, mangled): static shared bytes}"""
    text = subprocess.run([cuobjdump, "-res-usage", library], capture_output=True, text=True, check=True).stdout
    out, arch, name = {}, None, None
    for line in text.splitlines():
        m = re.search(r"arch = (sm_\d+)", line)
        if m:
            arch = m.group(1)
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            name = m.group(1)
            continue
        m = re.search(r"SHARED:(\d+)", line)
        if m and name:
            out[(arch, name)] = int(m.group(1))
            name = None
    return out


def reserved(arch):
    """sm_90 cubins count the 1 KB of shared memory the system reserves per block in SHARED."""
    return 1024 if int(arch[3:]) >= 90 else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cuobjdump", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--architectures", default="sm_80,sm_90")
    ap.add_argument("library")
    args = ap.parse_args()
    gemv_static = int(constant(f"{args.source_dir}/optimized/forward/tc_gemv.hpp", "kGemvStaticShared"))
    cayley_threads = int(constant(f"{args.source_dir}/optimized/rotation/batched_cayley.hpp", "kCayleyThreads"))

    functions = sass_functions(args.cuobjdump, args.library)
    shared = static_shared(args.cuobjdump, args.library)
    names = demangle(sorted({name for _, name in functions}))
    problems, counted = [], {}
    for (arch, mangled), lines in sorted(functions.items()):
        name = names[mangled]
        short = name.replace("qoracle::optimized::", "").replace("(anonymous namespace)::", "")[:110]
        body = "\n".join(lines)
        local = len(re.findall(r"\b(STL|LDL)\b", body))
        kernel = next((k for k in ("tc_gemv_kernel", "tc_rotation_kernel", "prepass_kernel", "view_gemv_kernel", "cayley_kernel")
                       if k in name), None)
        if kernel is None:
            continue
        counted[(arch, kernel)] = counted.get((arch, kernel), 0) + 1
        where = f"{arch} {short}"
        if kernel in ("tc_gemv_kernel", "tc_rotation_kernel", "prepass_kernel", "view_gemv_kernel") and local:
            problems.append(f"{where}: {local} local-memory instructions (STL/LDL: spills or local arrays)")
        if kernel in ("tc_gemv_kernel", "tc_rotation_kernel") and "HMMA" not in body:
            problems.append(f"{where}: no tensor-core instruction (HMMA)")
        if kernel == "tc_gemv_kernel":
            if not re.search(r"\bLDG\.E\.NA\.(64|128)\b", body):
                problems.append(f"{where}: no 8- or 16-byte no-allocate weight load (LDG.E.NA.64/128)")
            if shared.get((arch, mangled)) != gemv_static + reserved(arch):
                problems.append(f"{where}: static shared memory {shared.get((arch, mangled))} B, the planner counts {gemv_static}")
        if kernel == "cayley_kernel" and shared.get((arch, mangled)) != 4 * cayley_threads + reserved(arch):
            problems.append(f"{where}: static shared memory {shared.get((arch, mangled))} B, the planner counts {4 * cayley_threads}")
    for arch in args.architectures.split(","):
        for kernel, least in (("tc_gemv_kernel", 40), ("tc_rotation_kernel", 2), ("prepass_kernel", 3), ("view_gemv_kernel", 12),
                              ("cayley_kernel", 1)):
            if counted.get((arch, kernel), 0) < least:
                problems.append(f"{arch}: {counted.get((arch, kernel), 0)} instantiations of {kernel}, expected at least {least}")
    for (arch, kernel), n in sorted(counted.items()):
        print(f"{arch} {kernel}: {n} instantiations checked")
    for p in problems:
        print("FAIL " + p)
    print(f"kernel_binary_check: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
