-- wrk script: a plain GET, for the baseline server (a bare axum handler that
-- returns a fixed 1 KB JSON body: `cargo run --release --example bare_axum`).
--
--   taskset -c 1 wrk -t2 -c64 -d15s --latency -s k6/bare.lua http://127.0.0.1:8002/

wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
