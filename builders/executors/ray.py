"""The Ray executor: the same batches as the local executor, run on a cluster. Model replicas and sandbox pools
are Ray actors; the driver (this process) hands them batches with a bounded number in flight per actor, gets
records back, and alone writes them (so `kill -9` of the driver loses nothing recorded and `--resume` continues
on this or another cluster). A batch whose actor dies is run again elsewhere; results are keyed by batch, so
nothing is counted twice.

Nothing assumes a shared filesystem: the SQL databases the tasks read travel through Ray's object store and
are written once per node into a local cache keyed by their content. Every node needs the same codelutra-data
(and bubblewrap, for Python tasks), checked when the actors start, with the node named in the error."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import tempfile
from collections import deque
from pathlib import Path
from typing import Callable, Iterator, Sequence

from codelutra_data.builders.executors.base import Executor, ExecutorSettings, Item
from codelutra_data.builders.executors.local import LocalExecutor
from codelutra_data.errors import UserError
from codelutra_data.files import atomic_write
from codelutra_data.machine import bounded_workers
from codelutra_data.models.base import Completion, GenerationWork
from codelutra_data.models.engine import EngineSettings, LazyBackend
from codelutra_data.records import Execution, Task
from codelutra_data.sandboxes.settings import SandboxSettings

INSTALL_HINT = "pip install 'codelutra-data[ray]'"
IN_FLIGHT_PER_ACTOR = 2  # batches queued at one actor: enough to keep it busy, few enough to re-run cheaply
MAX_REPLACEMENTS = 3  # times a whole pool of lost actors is started again before the run gives up


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _node_label(info: dict) -> str:
    return f"{info.get('ip', '?')} (node {info.get('node', '?')[:12]})"


class SandboxHost:
    """One per node: a local executor (its sandbox worker processes) plus the node's copies of the databases."""

    def __init__(self, settings: SandboxSettings):
        self.executor = LocalExecutor(settings)
        self.paths: dict[str, str] = {}

    def info(self) -> dict:
        import socket

        import ray

        from codelutra_data import __version__
        from codelutra_data.sandboxes.isolation import detect

        isolation = detect() if self.executor.settings.isolation == "bwrap" else None
        return {"node": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(),
                "host": socket.gethostname(), "version": __version__,
                "bwrap_ok": bool(isolation and isolation.available), "bwrap_detail": isolation.detail if isolation else ""}

    def stage(self, files: dict[str, tuple[str, list]]) -> int:
        """Write each database (bytes from the object store) once into this node's cache, named by content."""
        import ray

        cache = Path(tempfile.gettempdir()) / "codelutra-ray" / "files"
        cache.mkdir(parents=True, exist_ok=True)
        for original, (digest, boxed) in files.items():
            target = cache / f"{digest}{Path(original).suffix}"
            if not target.exists():
                atomic_write(target, ray.get(boxed[0]))
            self.paths[original] = str(target)
        return len(self.paths)

    def run(self, items: list[Item], timeouts: dict[str, float] | None) -> list[dict]:
        import ray

        node = ray.get_runtime_context().get_node_id()
        local = []
        for task, key, code in items:
            if task.domain == "sql" and task.context.get("db_path") in self.paths:
                task = Task.from_dict({**task.to_dict(), "context": {**task.context,
                                                                     "db_path": self.paths[task.context["db_path"]]}})
            local.append((task, key, code))
        return [{**e.to_dict(), "node": node} for e in self.executor.run(local, timeouts)]

    def sandbox_info(self, domain: str) -> tuple[str, dict]:
        return self.executor.sandbox_info(domain)

    def close(self) -> None:
        self.executor.close()


class Replica:
    """One model backend on one node, loaded on its first batch."""

    def __init__(self, model_spec: str, engine: EngineSettings):
        self.backend = LazyBackend(model_spec, engine)

    def info(self) -> dict:
        import ray

        from codelutra_data import __version__

        return {"node": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(),
                "version": __version__}

    def generate(self, work: GenerationWork) -> tuple[list[list[Completion]], str, float]:
        loaded = self.backend.loaded
        out = self.backend.generate(work.prompts, work.n, work.sampling, work.seed)
        load_s = 0.0 if loaded else self.backend.timing.get("model_load_s", 0.0)
        return out, self.backend.version, load_s


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, settings: SandboxSettings, cluster: ExecutorSettings):
        self.ray = ray = import_ray()
        self.settings, self.cluster = settings, cluster
        self._started_here = False
        if not ray.is_initialized():
            kwargs = {"address": cluster.ray_address, "logging_level": "ERROR", "log_to_driver": False}
            if cluster.ray_address is None:
                kwargs.update(include_dashboard=False)
                self._started_here = True
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = cluster.ray_address or "a new local cluster"
                raise UserError(f"cannot connect to the Ray cluster at {where}: {str(exc).splitlines()[0]} (a cluster "
                                f"with token authentication needs RAY_AUTH_MODE=token here too)") from None
        self._hosts: list = []
        self._host_info: dict = {}
        self._staged: set[str] = set()
        self._replicas: dict[tuple, list] = {}
        self._load_recorded: set[tuple] = set()
        self._replacements = 0
        from codelutra_data import __version__

        self._version = __version__

    # --- the cluster -------------------------------------------------------------------------------------
    def _nodes(self) -> list[dict]:
        nodes = [n for n in self.ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        if not nodes:
            raise UserError("the Ray cluster has no live node with CPUs")
        return nodes

    def describe(self) -> dict:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        total = self.ray.cluster_resources()
        resources = {k: (round(v / 2**30, 1) if k in ("memory", "object_store_memory") else v)
                     for k, v in sorted(total.items()) if k in ("CPU", "GPU", "memory", "object_store_memory")}
        return {"name": "ray", "ray_version": self.ray.__version__, "nodes": len(nodes), "resources": resources,
                "replicas": self.cluster.replicas,
                "sandbox_workers": sum(self._host_info[id(h)]["workers"] for h in self._hosts) or None,
                "sandbox_nodes": len(self._hosts) or None}

    def _check(self, info: dict, what: str, domain: str | None = None) -> None:
        if info["version"] != self._version:
            raise UserError(f"{what} on {_node_label(info)} runs codelutra-data {info['version']}, this driver "
                            f"{self._version}: install the same version on every node")
        if domain == "python" and self.settings.isolation == "bwrap" and not info["bwrap_ok"]:
            raise UserError(f"{_node_label(info)} cannot sandbox Python: {info['bwrap_detail']} "
                            f"(install bubblewrap on every node)")

    def _start(self, what: str, handles: list, domain: str | None = None) -> list[dict]:
        """Wait for new actors to answer `info`; a node without codelutra-data fails here, named."""
        ray = self.ray
        infos = []
        for handle in handles:
            try:
                info = ray.get(handle.info.remote())
            except ray.exceptions.RayActorError as exc:
                cause = str(exc).strip().splitlines()
                hint = next((line for line in cause if "Error" in line), cause[-1] if cause else "")
                raise UserError(f"a {what} actor could not start: {hint.strip()} (every node needs "
                                f"codelutra-data installed: {INSTALL_HINT})") from None
            self._check(info, what, domain)
            infos.append(info)
        return infos

    def _sandbox_hosts(self, domain: str) -> list:
        """The sandbox actors, one per node, started on first use; the list is the dispatch pool itself."""
        if not self._hosts:
            self._hosts.extend(self._new_hosts(domain))
        elif domain == "python":
            for info in self._host_info.values():
                self._check(info, "a sandbox", domain)
        return self._hosts

    def _new_hosts(self, domain: str) -> list:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = self._nodes()
        if self.cluster.sandbox_workers:
            share = [self.cluster.sandbox_workers // len(nodes) + (i < self.cluster.sandbox_workers % len(nodes))
                     for i in range(len(nodes))]
        else:
            share = [max(1, int(n["Resources"]["CPU"])) for n in nodes]
        remote = self.ray.remote(num_cpus=0)(SandboxHost)
        handles, sizes = [], []
        for node, workers in zip(nodes, share):
            if workers < 1:
                continue
            workers = bounded_workers(workers, cpus=max(1, int(node["Resources"].get("CPU", 1))))
            opts = dataclasses.replace(self.settings, workers=workers)
            strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            handles.append(remote.options(scheduling_strategy=strategy).remote(opts))
            sizes.append(workers)
        infos = self._start("sandbox", handles, domain)
        self._host_info.update({id(h): {**i, "workers": w} for h, i, w in zip(handles, infos, sizes)})
        return handles

    def _replica_pool(self, backend: LazyBackend) -> tuple[tuple, list]:
        key = (backend.model_spec, backend.engine)
        if key not in self._replicas:
            self._replicas[key] = self._new_replicas(backend)
        return key, self._replicas[key]

    def _new_replicas(self, backend: LazyBackend) -> list:
        engine = backend.engine
        if backend.name == "vllm":
            resources = {"num_gpus": engine.tensor_parallel_size, "num_cpus": 1}
        else:
            resources = {"num_cpus": engine.threads or 1}
        remote = self.ray.remote(**resources)(Replica)
        handles = [remote.remote(backend.model_spec, engine) for _ in range(self.cluster.replicas)]
        self._start("model replica", handles)
        return handles

    # --- dispatch ----------------------------------------------------------------------------------------
    def _dispatch(self, pool: list, works: list, call: Callable, replace: Callable[[], list]) -> Iterator[tuple[int, object]]:
        """Run call(actor, work) for every work on the pool's actors, at most IN_FLIGHT_PER_ACTOR each; yield
        (index, result) as they finish. A dead actor's batches go back in the queue for the others."""
        ray = self.ray
        queue = deque(range(len(works)))
        pending: dict = {}
        load = {id(a): 0 for a in pool}
        while queue or pending:
            free = True
            while queue and free:  # round robin, so small runs still spread over every actor
                free = False
                for actor in sorted(pool, key=lambda a: load[id(a)]):
                    if queue and load[id(actor)] < IN_FLIGHT_PER_ACTOR:
                        index = queue.popleft()
                        pending[call(actor, works[index])] = (index, actor)
                        load[id(actor)] += 1
                        free = True
            if not pending:
                raise UserError("no live actor is left to run the remaining work")
            ready, _ = ray.wait(list(pending), num_returns=1)
            index, actor = pending.pop(ready[0])
            load[id(actor)] -= 1
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayActorError:
                queue.appendleft(index)
                for ref, (i, a) in list(pending.items()):
                    if a is actor:
                        queue.appendleft(i)
                        del pending[ref]
                if actor in pool:
                    pool.remove(actor)
                if not pool:
                    if self._replacements >= MAX_REPLACEMENTS:
                        raise UserError(f"every actor was lost {MAX_REPLACEMENTS + 1} times; giving up (the run "
                                        f"store keeps what finished: rerun with --resume)") from None
                    self._replacements += 1
                    pool.extend(replace())
                    load.update({id(a): 0 for a in pool})
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
                if isinstance(cause, UserError):
                    raise UserError(str(cause)) from None
                raise
            yield index, result

    def generate(self, backend, works: Sequence[GenerationWork]) -> Iterator[tuple[int, list[list[Completion]]]]:
        """(index, completions) per work item in the order replicas finish them; each item runs whole on one
        replica with its own seed, so a seeded backend gives what a local run gives."""
        if not works:
            return
        key, pool = self._replica_pool(backend)

        for index, (out, version, load_s) in self._dispatch(pool, list(works),
                                                            lambda a, w: a.generate.remote(w),
                                                            lambda: self._new_replicas(backend)):
            if load_s and key not in self._load_recorded:
                backend.timing["model_load_s"] = backend.timing.get("model_load_s", 0.0) + load_s
                self._load_recorded.add(key)
            backend.record_remote(out, version)
            yield index, out

    def _stage(self, hosts: list, items: Sequence[Item]) -> None:
        files = {}
        for task, _, _ in items:
            path = task.context.get("db_path") if task.domain == "sql" else None
            if path and path not in self._staged:
                data = Path(path).read_bytes()
                files[path] = (hashlib.sha256(data).hexdigest()[:32], [self.ray.put(data)])
        if files:
            self.ray.get([h.stage.remote(files) for h in hosts])
            self._staged.update(files)

    def run_iter(self, items: Sequence[Item], timeouts: dict[str, float] | None = None) -> Iterator[tuple[int, Execution]]:
        if not items:
            return
        hosts = self._sandbox_hosts(items[0][0].domain)
        self._stage(hosts, items)
        size = max(1, min(32, math.ceil(len(items) / (IN_FLIGHT_PER_ACTOR * len(hosts)))))
        starts = list(range(0, len(items), size))
        batches = [list(items[s:s + size]) for s in starts]

        def replace() -> list:
            self._host_info, self._staged = {}, set()
            fresh = self._new_hosts(items[0][0].domain)
            self._stage(fresh, items)
            return fresh

        for b, rows in self._dispatch(hosts, batches, lambda a, batch: a.run.remote(batch, timeouts), replace):
            for j, row in enumerate(rows):
                yield starts[b] + j, Execution.from_dict(row)

    def sandbox_info(self, domain: str) -> tuple[str, dict]:
        name, limits = self.ray.get(self._sandbox_hosts(domain)[0].sandbox_info.remote(domain))
        return name, limits

    def close(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            return
        try:
            ray.get([h.close.remote() for h in self._hosts], timeout=30)
        except Exception:  # a node already gone: its processes went with it
            pass
        for handle in self._hosts + [r for pool in self._replicas.values() for r in pool]:
            try:
                ray.kill(handle)
            except Exception:
                pass
        self._hosts, self._replicas = [], {}
        ray.shutdown()
