#!/usr/bin/env python3
"""createJob latency and createJobs(1000) time over HTTP for one binary on one PostgreSQL database.

Usage: scripts/write_latency.py BINARY DATABASE PORT  (JWT secret in /work/bench/jwt or $JWT_SECRET)
Migrates DATABASE, starts BINARY serve without the cache, signs up, sends 300
sequential createJob and 5 createJobs of 1,000, prints the medians. Alternate
two binaries (each on its own fresh database) to compare them in one run.
"""
import http.client, json, time, subprocess, os, sys, statistics, signal
binary, db, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}", BIND_ADDR=f"127.0.0.1:{port}",
           CACHE_ENABLED="false", RUST_LOG="warn", JWT_SECRET=os.environ.get("JWT_SECRET") or open("/work/bench/jwt").read().strip(), LOG_RETENTION_DAYS="36500")
subprocess.run([binary, "migrate"], env=env, check=True, capture_output=True)
srv = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/health"); c.getresponse().read(); break
        except Exception: time.sleep(0.1)
    c = http.client.HTTPConnection("127.0.0.1", port)
    def gql(q, v=None, tok=None):
        h = {"content-type": "application/json"}
        if tok: h["authorization"] = "Bearer " + tok
        c.request("POST", "/graphql", json.dumps({"query": q, "variables": v or {}}), h)
        r = json.loads(c.getresponse().read()); assert "errors" not in r, r; return r["data"]
    email = f"w{time.time_ns()}@example.com"
    d = gql('mutation($i: SignupInput!){ signup(input:$i){ token } }', {"i": {"teamName": "W", "email": email, "password": "correct horse battery staple", "name": "W"}})
    tok = d["signup"]["token"]
    one = 'mutation{ createJob(input:{title:"T", company:"C"}){ id } }'
    for _ in range(20): gql(one, tok=tok)
    ts = []
    for _ in range(300):
        t = time.perf_counter(); gql(one, tok=tok); ts.append(time.perf_counter() - t)
    bulk = 'mutation($j:[CreateJobInput!]!){ createJobs(input:$j){ id } }'
    jobs = [{"title": f"T{i}", "company": f"C{i%50}"} for i in range(1000)]
    bs = []
    for _ in range(5):
        t = time.perf_counter(); gql(bulk, {"j": jobs}, tok); bs.append(time.perf_counter() - t)
    print(f"{os.path.basename(binary)}: createJob p50 {statistics.median(ts)*1000:.2f} ms, createJobs(1000) median {statistics.median(bs)*1000:.1f} ms")
finally:
    srv.send_signal(signal.SIGTERM); srv.wait()
