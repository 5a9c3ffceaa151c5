// Finding the Vulkan loader and NVIDIA's driver on the GPU machine, for the Vulkan runners
// (bench/device/vulkan.ts, vulkan-checks.ts, vulkan-bench.ts):
//  - the loader carried in .device/vulkan (Debian's libvulkan1, unpacked by prepare.sh) as
//    TKC_VULKAN_LIB;
//  - the NVIDIA ICD manifest found under /usr/local/nvidia/share/vulkan/icd.d, /usr/share/vulkan/icd.d
//    or /etc/vulkan/icd.d as VK_ICD_FILENAMES (a TKC_VULKAN_LIB or VK_ICD_FILENAMES already set wins);
//  - the driver's folder on LD_LIBRARY_PATH, which takes running the process again.
// Without an NVIDIA manifest (lavapipe here) the loader's default drivers are used.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  createVulkanRuntime,
  type VulkanRuntime,
  type VulkanRuntimeOptions,
} from "../../backends/vulkan/runtime.ts";

const ICD_DIRS = ["/usr/local/nvidia/share/vulkan/icd.d", "/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];
const LIB_DIRS = [
  "/usr/local/nvidia/lib64",
  "/usr/local/nvidia/lib",
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib64",
  "/lib/x86_64-linux-gnu",
  "/usr/lib",
];

/** Folders the dynamic linker searches without LD_LIBRARY_PATH (Debian and Ubuntu, x86-64). */
const SYSTEM_LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib", "/lib"];

export interface VulkanSetup {
  loader: string;
  icd?: string;
  icdLibrary?: string;
  notes: string[];
}

/**
 * Points the runtime at the carried loader and at the NVIDIA ICD. An ICD manifest that names its
 * driver library without a path (libGLX_nvidia.so.0) is copied to /tmp with the path found here,
 * so the loader does not depend on LD_LIBRARY_PATH.
 */
export function setupVulkan(deviceDir: string): VulkanSetup {
  const notes: string[] = [];
  const carried = join(deviceDir, "vulkan/usr/lib/x86_64-linux-gnu/libvulkan.so.1");
  if (!process.env.TKC_VULKAN_LIB) {
    if (existsSync(carried)) process.env.TKC_VULKAN_LIB = carried;
    else notes.push(`no carried loader at ${carried} (run prepare.sh); trying the system's libvulkan.so.1`);
  }
  const setup: VulkanSetup = { loader: process.env.TKC_VULKAN_LIB ?? "libvulkan.so.1", notes };
  const preset = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
  if (preset) {
    setup.icd = preset;
    return setup;
  }
  const manifests = ICD_DIRS.flatMap((d) => {
    try {
      return readdirSync(d)
        .filter((f) => f.endsWith(".json"))
        .map((f) => join(d, f));
    } catch {
      return [];
    }
  });
  notes.push(`ICD manifests found: ${manifests.join(", ") || "none"}`);
  const nvidia = manifests.filter((m) => /nvidia/i.test(m));
  if (nvidia.length === 0) {
    notes.push(
      `no NVIDIA ICD manifest in ${ICD_DIRS.join(", ")}; NVIDIA_DRIVER_CAPABILITIES=${process.env.NVIDIA_DRIVER_CAPABILITIES ?? "(unset)"} (Vulkan needs "graphics")`,
    );
    return setup;
  }
  const icd = nvidia[0]!;
  setup.icd = icd;
  let manifest: { ICD?: { library_path?: string } } = {};
  try {
    manifest = JSON.parse(readFileSync(icd, "utf8")) as typeof manifest;
  } catch (e) {
    notes.push(`${icd} is not readable JSON: ${(e as Error).message}`);
  }
  const lib = manifest.ICD?.library_path;
  if (lib && !lib.includes("/")) {
    const dirs = [...(process.env.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean), ...LIB_DIRS];
    const found = dirs.map((d) => join(d, lib)).find((p) => existsSync(p));
    if (found) {
      const patched = "/tmp/tkc_nvidia_icd.json";
      writeFileSync(patched, JSON.stringify({ ...manifest, ICD: { ...manifest.ICD, library_path: found } }));
      setup.icd = patched;
      setup.icdLibrary = found;
      notes.push(`${icd} names ${lib}: using ${found} (manifest copied to ${patched})`);
    } else
      notes.push(
        `${icd} names ${lib}, which is in none of ${dirs.join(", ")}: the container may lack the NVIDIA graphics libraries (NVIDIA_DRIVER_CAPABILITIES=${process.env.NVIDIA_DRIVER_CAPABILITIES ?? "(unset)"})`,
      );
  } else if (lib) setup.icdLibrary = lib;
  process.env.VK_ICD_FILENAMES = setup.icd;
  return setup;
}

/**
 * setupVulkan, printing its notes with `log`; then, when the driver's folder is not where the
 * dynamic linker looks (the driver loads its own libraries by name from there, and LD_LIBRARY_PATH
 * is read at process start), runs this process again with the folder on LD_LIBRARY_PATH and returns
 * the child's exit status as `exitCode`. The child's setup notes begin with the parent's.
 */
export function startVulkan(
  deviceDir: string,
  log: (line: string) => void,
): { setup: VulkanSetup; exitCode?: number } {
  const setup = setupVulkan(deviceDir);
  const parent = process.env.TKC_VULKAN_REEXEC;
  if (parent) setup.notes.unshift(...(JSON.parse(parent) as string[]));
  else for (const n of setup.notes) log(`setup: ${n}`);
  const driverDir = setup.icdLibrary?.includes("/") ? dirname(setup.icdLibrary) : undefined;
  const searched = [...(process.env.LD_LIBRARY_PATH ?? "").split(":"), ...SYSTEM_LIB_DIRS];
  if (driverDir && !searched.includes(driverDir) && !parent) {
    log(`setup: running again with ${driverDir} on LD_LIBRARY_PATH`);
    const env = {
      ...process.env,
      LD_LIBRARY_PATH: [driverDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":"),
      TKC_VULKAN_REEXEC: JSON.stringify(setup.notes),
    };
    const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: "inherit",
      env,
    });
    return { setup, exitCode: child.status ?? 2 };
  }
  return { setup };
}

/** The device a runner's results name: what the runtime reports of it. */
export interface VulkanDeviceRecord {
  readonly type: string;
  readonly apiVersion: string;
  readonly subgroup: VulkanRuntime["device"]["subgroup"];
  readonly limits: VulkanRuntime["device"]["limits"];
}

/**
 * The Vulkan runtime, its device printed on one line (`suffix` appended) and described for the
 * results; or, without one, the reason, with the NVIDIA and Vulkan libraries the machine has noted
 * in setup.notes and printed as `runner: ...`.
 */
export function openVulkan(
  setup: VulkanSetup,
  runner: string,
  suffix = "",
  options: VulkanRuntimeOptions = {},
): { rt: VulkanRuntime; record: VulkanDeviceRecord } | { error: string } {
  let rt: VulkanRuntime;
  try {
    rt = createVulkanRuntime(options);
  } catch (e) {
    setup.notes.push(
      `NVIDIA and Vulkan libraries present: ${driverLibraries().slice(0, 60).join(", ") || "none"}`,
    );
    console.error(`${runner}: ${setup.notes.at(-1)}`);
    return { error: `no Vulkan device: ${e instanceof Error ? e.message : String(e)}` };
  }
  const info = rt.device;
  console.log(
    `device: ${info.name} (${info.type}, Vulkan ${info.apiVersion}, subgroup ${info.subgroup.size}); loader ${setup.loader}; ICD ${setup.icd ?? "(loader default)"}${suffix}`,
  );
  return {
    rt,
    record: { type: info.type, apiVersion: info.apiVersion, subgroup: info.subgroup, limits: info.limits },
  };
}

/** What the machine has of NVIDIA's user-space driver and Vulkan loaders (for a failed start). */
export function driverLibraries(): string[] {
  return LIB_DIRS.flatMap((d) => {
    try {
      return readdirSync(d)
        .filter((f) => /nvidia|libvulkan/i.test(f))
        .map((f) => join(d, f));
    } catch {
      return [];
    }
  });
}
