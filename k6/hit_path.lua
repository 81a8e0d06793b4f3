-- wrk script: POST one fixed, cacheable GraphQL request (the cache hit path).
--
--   TOKEN=<bearer token> taskset -c 1 wrk -t2 -c64 -d15s --latency \
--     -s k6/hit_path.lua http://127.0.0.1:8000/graphql
--
-- The body is the same bytes on every request, so after one warm-up request
-- every request from the same team is an X-Cache: HIT (jobs list, 60 s TTL).
-- No response() hook on purpose: it would put Lua on every response and
-- measure wrk instead of the server. run-hit-path.sh checks the hits through
-- /metrics instead.

local token = os.getenv("TOKEN")
if token == nil or token == "" then
  io.stderr:write("hit_path.lua: set TOKEN to a bearer token (see k6/README.md)\n")
  os.exit(2)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
-- ACCEPT_ENCODING=gzip (or br, zstd) asks for a compressed answer: the
-- same hit path plus compression (remembered per answer).
local encoding = os.getenv("ACCEPT_ENCODING")
if encoding ~= nil and encoding ~= "" then
  wrk.headers["Accept-Encoding"] = encoding
end
wrk.body = '{"query":"{ jobs(first: 20) { nodes { id title company status team { name } createdBy { name } } } }"}'
