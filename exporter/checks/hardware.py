"""Host facts, read once per SSH connection (not every probe): CPU, memory, virtualization, DMI.

    node_cpu_info{cpu,package,core,vendor,family,model,model_name,microcode,stepping,
                  cachesize}                    as node_exporter's cpu collector (x86 fields;
                                                absent ones are empty)
    node_dmi_info{bios_date,bios_vendor,bios_version,board_name,board_vendor,
                  board_version,chassis_vendor,product_family,product_name,
                  product_version,system_vendor} as node_exporter's dmi collector (no serials)
    stacksense_server_info{cpu_model,cpu_sockets,cpu_cores,cpu_threads,memory_bytes,
                           virtualization}      what node_exporter has no series for

The section runs when the probe opens a new shell (a new connection, after a
failure or a restart of the exporter); the families are kept and repeated by the
probes in between, so the series never go stale. Sources are files (one `head`),
plus `systemd-detect-virt` where it exists; without it, virtualization is guessed
from the CPU's hypervisor flag, DMI names and container marker files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.collectors._common import label_text
from exporter.command import split_headed
from exporter.exposition import Family

SECTION = "hw"
STATE = "hw.families"
DMI = "/sys/class/dmi/id/"
DMI_FIELDS = (
    "bios_date",
    "bios_vendor",
    "bios_version",
    "board_name",
    "board_vendor",
    "board_version",
    "chassis_vendor",
    "product_family",
    "product_name",
    "product_version",
    "sys_vendor",
)
FILES = ("/proc/cpuinfo", "/proc/meminfo", "/sys/hypervisor/type", *(DMI + f for f in DMI_FIELDS))
SNIPPET = (
    f"head -v -n 1000000000 {' '.join(FILES)} 2>/dev/null; "
    "echo '==> virt <=='; systemd-detect-virt 2>/dev/null || "
    "{ [ -e /.dockerenv ] && echo docker; } || { [ -e /run/.containerenv ] && echo podman; }"
    " || echo unknown"
)
CPU_LABELS = {
    "vendor_id": "vendor",
    "cpu family": "family",
    "model": "model",
    "model name": "model_name",
    "microcode": "microcode",
    "stepping": "stepping",
    "cache size": "cachesize",
}
VM_NAMES = {
    "kvm": "kvm",
    "qemu": "qemu",
    "vmware": "vmware",
    "virtualbox": "oracle",
    "virtual machine": "microsoft",
    "hvm domu": "xen",
    "bochs": "bochs",
    "google compute engine": "google",
    "amazon ec2": "amazon",
}


def sections() -> dict[str, str]:
    return {SECTION: SNIPPET}


def _cpus(text: str) -> list[dict[str, str]]:
    cpus = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "processor" in fields:
            cpus.append(fields)
    return cpus


def _virtualization(files: Mapping[str, str], cpus: list[dict[str, str]]) -> str:
    # systemd-detect-virt prints "none" and fails on bare metal, so the fallbacks after
    # it print too: its answer is the first line.
    detected = files.get("virt", "").strip().splitlines()
    answer = detected[0].strip() if detected else "unknown"
    if answer not in ("unknown", ""):
        return answer  # systemd-detect-virt's names: none, kvm, vmware, docker, ...
    product = " ".join(
        files.get(DMI + f, "").strip().lower() for f in ("product_name", "sys_vendor")
    )
    for needle, name in VM_NAMES.items():
        if needle in product:
            return name
    hypervisor = files.get("/sys/hypervisor/type", "").strip()
    if hypervisor:
        return hypervisor
    if cpus and "hypervisor" in cpus[0].get("flags", "").split():
        return "vm"
    return "none" if product.strip() else "unknown"


def build(text: str) -> list[Family]:
    files = split_headed(text) if text.startswith("==> ") else {}
    cpus = _cpus(files.get("/proc/cpuinfo", ""))
    families: list[Family] = []
    cpu_info = Family("node_cpu_info", "gauge", "CPU information from /proc/cpuinfo.")
    for cpu in cpus:
        labels = {
            "cpu": cpu.get("processor", ""),
            "package": cpu.get("physical id", ""),
            "core": cpu.get("core id", ""),
        }
        labels.update({label: cpu.get(key, "") for key, label in CPU_LABELS.items()})
        if not labels["model_name"]:  # ARM: no "model name"
            labels["model_name"] = cpu.get("Processor", cpu.get("CPU part", ""))
        cpu_info.samples.append((label_text(**dict(sorted(labels.items()))), 1.0))
    if cpu_info.samples:
        families.append(cpu_info)
    dmi = {
        ("system_vendor" if f == "sys_vendor" else f): files.get(DMI + f, "").strip()
        for f in DMI_FIELDS
    }
    if any(dmi.values()):
        families.append(
            Family(
                "node_dmi_info",
                "gauge",
                "A metric with a constant '1' value labeled by bios_date, "
                "bios_vendor, ... product_name and system_vendor.",
                [(label_text(**dict(sorted(dmi.items()))), 1.0)],
            )
        )
    sockets = {c.get("physical id") for c in cpus if c.get("physical id")}
    cores = {(c.get("physical id"), c.get("core id")) for c in cpus if c.get("core id")}
    memory = ""
    for line in files.get("/proc/meminfo", "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                memory = str(int(parts[1]) * 1024)
    model = next((c.get("model name") or c.get("Processor") or "" for c in cpus), "")
    info = {
        "cpu_model": model,
        "cpu_sockets": str(len(sockets) or (1 if cpus else 0)),
        "cpu_cores": str(len(cores) or len(cpus)),
        "cpu_threads": str(len(cpus)),
        "memory_bytes": memory,
        "virtualization": _virtualization(files, cpus),
        "system_vendor": dmi["system_vendor"],
        "product_name": dmi["product_name"],
    }
    families.append(
        Family(
            "stacksense_server_info",
            "gauge",
            "Host facts read once per connection: CPU, memory, virtualization, vendor and product.",
            [(label_text(**info), 1.0)],
        )
    )
    return families


def collect(sections: Mapping[str, str], state: dict[str, Any]) -> list[Family]:
    """This probe's host-fact families: built from the section when it ran, else kept."""
    text = sections.get(SECTION)
    if text is not None:
        try:
            state[STATE] = build(text)
        except (ValueError, IndexError, KeyError):
            state[STATE] = []
    kept: list[Family] = state.get(STATE, [])
    return kept
