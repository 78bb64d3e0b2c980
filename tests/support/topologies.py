"""Real Redis topologies for tests: TLS, ACL users, Sentinel, Cluster.

Each set-up runs real ``redis-server`` processes on free 127.0.0.1 ports, with
their files in a temp dir of their own, and :meth:`stop` (or leaving the
``with`` block) always stops every process it started.  A missing
``redis-server`` is an error (see :func:`support.redis_proc.redis_server_binary`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from support.redis_proc import RedisProcess, free_port, redis_server_binary, wait_until

#: Sentinel's name for the monitored master in every set-up here.
MASTER_NAME = "mymaster"


class _Group:
    """Processes started together and stopped together, files under one temp dir."""

    def __init__(self, workdir: Path | None, prefix: str) -> None:
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix=prefix))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[RedisProcess] = []

    def _spawn(self, process: RedisProcess) -> RedisProcess:
        self.processes.append(process)
        process.start()
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Any:
        try:
            return self.start()  # type: ignore[attr-defined]
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def logs(self) -> str:
        """Every process's log, for assertion messages."""
        out = []
        for log in sorted(self.dir.rglob("*.log")):
            out.append(f"--- {log.relative_to(self.dir)}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)


class _OneServer(_Group):
    """A group of one redis-server (``server``, once started)."""

    def __init__(self, workdir: Path | None, prefix: str) -> None:
        super().__init__(workdir, prefix)
        self.server: RedisProcess | None = None

    def _start_server(self, server: RedisProcess) -> None:
        self.server = server
        server.dir.mkdir(parents=True, exist_ok=True)
        self._spawn(server)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port


# -- TLS ---------------------------------------------------------------------------------------


class TLSRedisProcess(RedisProcess):
    """redis-server that listens with TLS only; :meth:`client` speaks TLS with the test CA."""

    def __init__(self, *, workdir: Path, ca_file: Path, cert_file: Path, key_file: Path,
                 password: str | None = None) -> None:
        super().__init__(
            "--port", "0",
            "--tls-port", "PORT",
            "--tls-cert-file", str(cert_file),
            "--tls-key-file", str(key_file),
            "--tls-ca-cert-file", str(ca_file),
            "--tls-auth-clients", "no",
            workdir=workdir, password=password,
        )
        self.extra_args[self.extra_args.index("PORT")] = str(self.port)
        self.ca_file = ca_file

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        kwargs.setdefault("ssl", True)
        kwargs.setdefault("ssl_ca_certs", str(self.ca_file))
        return super().client(**kwargs)


class TLSRedis(_OneServer):
    """One TLS-only redis-server with a certificate for 127.0.0.1 and localhost from a trustme CA.

    ``ca_file`` verifies the server; ``other_ca_file`` is a CA that did not sign it.
    """

    def __init__(self, workdir: Path | None = None, password: str | None = None) -> None:
        super().__init__(workdir, "redbeat-tls-")
        self.password = password
        self.ca_file = self.dir / "ca.pem"
        self.other_ca_file = self.dir / "other-ca.pem"

    def start(self) -> TLSRedis:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(self.ca_file))
        trustme.CA().cert_pem.write_to_path(str(self.other_ca_file))
        cert_file, key_file = self.dir / "server.pem", self.dir / "server.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(cert_file), append=True)
        cert.private_key_pem.write_to_path(str(key_file))
        self._start_server(TLSRedisProcess(workdir=self.dir / "redis", ca_file=self.ca_file, cert_file=cert_file,
                                           key_file=key_file, password=self.password))
        return self

    def client(self, **kwargs: object) -> redis.Redis:
        assert self.server is not None
        return self.server.client(**kwargs)


# -- ACL ---------------------------------------------------------------------------------------


class ACLRedis(_OneServer):
    """A redis-server whose default user needs a password; :meth:`add_user` runs ``ACL SETUSER``."""

    ADMIN_PASSWORD = "admin-secret-1"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir, "redbeat-acl-")

    def start(self) -> ACLRedis:
        self._start_server(RedisProcess(workdir=self.dir / "redis", password=self.ADMIN_PASSWORD))
        return self

    def admin(self) -> redis.Redis:
        assert self.server is not None
        return self.server.client()

    def add_user(self, name: str, password: str, *rules: str) -> None:
        """``ACL SETUSER name reset on >password <rules...>`` (rules as in redis.conf)."""
        self.admin().execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", *rules)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """A redis:// URL with the credentials percent-quoted (celery-redbeat #202)."""
        from urllib.parse import quote

        auth = ""
        if password is not None:
            auth = f"{quote(user or '', safe='')}:{quote(password, safe='')}@"
        return f"redis://{auth}127.0.0.1:{self.port}/0"


# -- Sentinel ----------------------------------------------------------------------------------


class SentinelProcess(RedisProcess):
    """``redis-server sentinel.conf --sentinel``; Sentinel rewrites the file, so it lives in a temp dir."""

    def __init__(self, *, workdir: Path, master_port: int, master_name: str = MASTER_NAME, quorum: int = 2,
                 down_after_ms: int = 1000, failover_timeout_ms: int = 5000) -> None:
        super().__init__(workdir=workdir)
        self.conf = workdir / "sentinel.conf"
        self.settings = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {workdir}",
            f"logfile {workdir / 'redis.log'}",
            f"sentinel monitor {master_name} 127.0.0.1 {master_port} {quorum}",
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}",
            f"sentinel failover-timeout {master_name} {failover_timeout_ms}",
            f"sentinel parallel-syncs {master_name} 1",
        ]

    def command_line(self) -> list[str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text("\n".join(self.settings) + "\n")
        return [redis_server_binary(), str(self.conf), "--sentinel"]


class SentinelSet(_Group):
    """A master, ``replicas`` replicas and three Sentinels monitoring ``mymaster`` (quorum 2).

    ``data_args`` go to every data server (Sentinel may promote any of them).
    """

    def __init__(self, workdir: Path | None = None, *, data_args: tuple[str, ...] = (), replicas: int = 2,
                 master_name: str = MASTER_NAME) -> None:
        super().__init__(workdir, "redbeat-sentinel-")
        # No 5 s pause before a full sync (the default), so replicas are ready at once.
        self.data_args = ("--repl-diskless-sync-delay", "0", *data_args)
        self.replicas = replicas
        self.master_name = master_name
        self.data: list[RedisProcess] = []
        self.sentinels: list[SentinelProcess] = []

    def start(self) -> SentinelSet:
        master = RedisProcess(*self.data_args, workdir=self.dir / "master")
        master.dir.mkdir(parents=True)
        self._spawn(master)
        self.data = [master]
        for index in range(self.replicas):
            replica = RedisProcess(*self.data_args, "--replicaof", "127.0.0.1", str(master.port),
                                   workdir=self.dir / f"replica{index}")
            replica.dir.mkdir(parents=True)
            self._spawn(replica)
            self.data.append(replica)
        for replica in self.data[1:]:
            wait_until(lambda r=replica: r.client().info("replication").get("master_link_status") == "up",
                       message="the replicas to sync")
        for index in range(3):
            sentinel = SentinelProcess(workdir=self.dir / f"sentinel{index}", master_port=master.port,
                                       master_name=self.master_name)
            self.sentinels.append(sentinel)
            self._spawn(sentinel)
        for sentinel in self.sentinels:
            wait_until(lambda s=sentinel: self._sees_good_replicas(s), timeout=15,
                       message=f"sentinel {sentinel.port} to find the replicas")
        return self

    def _sees_good_replicas(self, sentinel: SentinelProcess) -> bool:
        replicas = sentinel.client().sentinel_slaves(self.master_name)
        good = [r for r in replicas if r.get("is_slave") and not r.get("is_sdown") and not r.get("is_disconnected")
                and r.get("master-link-status") == "ok"]
        return len(good) == self.replicas

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    def master_port(self, sentinel: int = 0) -> int:
        host, port = self.sentinels[sentinel].client().sentinel_get_master_addr_by_name(self.master_name)
        return int(port)

    def master(self) -> RedisProcess:
        """The data server the first Sentinel names as master (a replaced master may still think it is one)."""
        port = self.master_port()
        return next(p for p in self.data if p.port == port)

    def start_failover(self) -> int:
        """``SENTINEL FAILOVER`` (asked of the first Sentinel); returns the old master's port."""
        old = self.master_port()
        self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", self.master_name)
        return old

    def wait_switched(self, old: int, timeout: float = 20.0) -> int:
        """Until every Sentinel names a new master that says it is master; its port.

        The old master is demoted by Sentinel later (it re-checks it every 10 s).
        """

        def switched() -> int | None:
            try:
                ports = {self.master_port(i) for i in range(len(self.sentinels))}
                if len(ports) != 1 or old in ports:
                    return None
                port = ports.pop()
                process = next(p for p in self.data if p.port == port)
                return port if process.client().info("replication")["role"] == "master" else None
            except redis.ConnectionError:
                return None

        return int(wait_until(switched, timeout=timeout, interval=0.1, message="the Sentinel failover to complete"))


# -- Cluster -----------------------------------------------------------------------------------


class ClusterNodeProcess(RedisProcess):
    """One cluster-enabled node; its bus port is a free port of its own (not port + 10000)."""

    def __init__(self, *, workdir: Path, node_timeout_ms: int = 3000) -> None:
        self.bus_port = free_port()
        super().__init__(
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(workdir / "nodes.conf"),
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-port", str(self.bus_port),
            workdir=workdir,
        )


class RedisClusterSet(_Group):
    """Three masters, no replicas, all 16384 slots split evenly (what ``redis-cli --cluster create`` makes)."""

    SLOT_RANGES = ((0, 5460), (5461, 10922), (10923, 16383))

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir, "redbeat-cluster-")
        self.nodes: list[ClusterNodeProcess] = []

    def start(self) -> RedisClusterSet:
        for index in range(3):
            node = ClusterNodeProcess(workdir=self.dir / f"node{index}")
            node.dir.mkdir(parents=True)
            self.nodes.append(node)
            self._spawn(node)
        for epoch, (node, (first, last)) in enumerate(zip(self.nodes, self.SLOT_RANGES, strict=False), start=1):
            admin = node.client()
            admin.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            admin.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        first_node = self.nodes[0].client()
        for node in self.nodes[1:]:
            first_node.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
        wait_until(self._ready, timeout=20, interval=0.1, message="the cluster to be ok on every node")
        return self

    def _ready(self) -> bool:
        for node in self.nodes:
            raw = node.client().execute_command("CLUSTER", "INFO")
            info = dict(line.split(":", 1) for line in str(raw).splitlines() if ":" in line)
            if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != 3:
                return False
            if int(info.get("cluster_slots_ok", 0)) != 16384:
                return False
        return True

    @property
    def url(self) -> str:
        return f"redis-cluster://127.0.0.1:{self.nodes[0].port}"

    @property
    def startup_nodes(self) -> list[dict[str, Any]]:
        return [{"host": "127.0.0.1", "port": node.port} for node in self.nodes]

    def client(self) -> Any:
        from redis.cluster import RedisCluster

        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, decode_responses=True)

    def node_of(self, key: str) -> ClusterNodeProcess:
        """The node that serves ``key``'s slot."""
        slot = int(self.nodes[0].client().execute_command("CLUSTER", "KEYSLOT", key))
        for node, (first, last) in zip(self.nodes, self.SLOT_RANGES, strict=False):
            if first <= slot <= last:
                return node
        raise AssertionError(slot)


def wait_port_closed(port: int, timeout: float = 5.0) -> None:
    """Until nothing accepts on 127.0.0.1:port (a killed server's socket is gone)."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"port {port} still accepts connections")
