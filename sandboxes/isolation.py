"""Which isolation this machine offers, and the bubblewrap command line that provides it.

The sandbox sees a read-only view of only what Python needs (/usr, the interpreter's prefix, the virtual
environment, the worker script), a private /tmp that dies with it, no network, its own PID/IPC/UTS/user
namespaces, an empty environment, and it dies with its parent. Everything else of the host (home folders,
/root, /etc secrets, the repository's writable tree) is simply absent.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ISOLATIONS = ("bwrap", "none")
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install "
                "bubblewrap`; Arch: `sudo pacman -S bubblewrap`), or run with `--isolation none` to execute "
                "model-written code with weak isolation (rlimits only) at your own risk")
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "MPLBACKEND": "Agg",
    # pyarrow's default allocator (mimalloc) reserves 1 GiB of address space on its first allocation, which
    # alone would exhaust a program's memory budget: the system allocator reserves what it uses.
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf", "passwd", "group", "hosts",
              "mime.types")


@dataclass(frozen=True)
class IsolationStatus:
    available: bool
    kind: str
    detail: str
    bwrap: str | None = None
    version: str | None = None


def readonly_roots(extra: tuple[str, ...] = ()) -> list[str]:
    """Host paths the sandboxed interpreter needs (ours, and another one's `extra` folders), outermost first,
    without duplicates or nesting."""
    wanted = {"/usr", sys.base_prefix, sys.prefix, str(Path(__file__).resolve().parent), *extra}
    wanted |= {p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")) and os.path.isdir(p)}
    real = sorted({os.path.realpath(p) for p in wanted} | {os.path.abspath(p) for p in wanted})
    roots: list[str] = []
    for path in real:
        if not os.path.exists(path) or any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            continue
        roots.append(path)
    return roots


def bwrap_command(bwrap: str, tmp_mb: int, extra_roots: tuple[str, ...] = ()) -> list[str]:
    """The bubblewrap prefix; the worker's own command line is appended by the caller."""
    # /tmp first: read-only binds that live under the host's /tmp (a venv in /tmp) must land on top of it.
    cmd = [bwrap, "--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--as-pid-1", "--new-session", "--clearenv",
           "--size", str(tmp_mb * 2**20), "--tmpfs", "/tmp"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for root in readonly_roots(extra_roots):
        cmd += ["--ro-bind", root, root]
    for name in _ETC_FILES:
        if os.path.exists(f"/etc/{name}"):
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(16 * 2**20), "--tmpfs", "/dev/shm",
            "--remount-ro", "/", "--chdir", "/tmp"]
    for key, value in SANDBOX_ENV.items():
        cmd += ["--setenv", key, value]
    return cmd


@lru_cache(maxsize=1)
def detect() -> IsolationStatus:
    """Probe bubblewrap once: found, and able to create the namespaces we ask for."""
    if platform.system() != "Linux":
        return IsolationStatus(False, "bwrap", f"bubblewrap needs Linux (this is {platform.system()}); " + INSTALL_HINT)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return IsolationStatus(False, "bwrap", "bubblewrap (`bwrap`) is not installed: " + INSTALL_HINT)
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        probe = subprocess.run([*bwrap_command(bwrap, 16), sys.executable, "-I", "-c", "print(1)"],
                               capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return IsolationStatus(False, "bwrap", f"bubblewrap failed to start ({exc}); " + INSTALL_HINT, bwrap)
    if probe.returncode != 0 or probe.stdout.strip() != "1":
        reason = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        hint = ("user namespaces look disabled (try `sysctl kernel.unprivileged_userns_clone=1`, or on Ubuntu "
                "24.04+ `sysctl kernel.apparmor_restrict_unprivileged_userns=0`)"
                if "namespace" in reason.lower() or "permission" in reason.lower() else INSTALL_HINT)
        return IsolationStatus(False, "bwrap", f"bubblewrap cannot create a sandbox here: {reason}; {hint}", bwrap,
                               version)
    return IsolationStatus(True, "bwrap", "bubblewrap: no network, read-only root, private /tmp, own PID "
                           "namespace, empty environment", bwrap, version)
