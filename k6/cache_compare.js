// Cached vs uncached jobgraph, in one run.
//
// Two servers on the same database: CACHED_URL (cache on) and UNCACHED_URL
// (started with CACHE_ENABLED=false). For each read query (list, detail,
// stats, logs) one constant-vus scenario runs against each server, one after
// the other, and handleSummary prints query x server -> req/s, p50/p95/p99,
// error rate, hit share, and the cached/uncached speed-up.
//
//   TOKENS_FILE=/tmp/k6work/tokens.json \
//   CACHED_URL=http://127.0.0.1:8000 UNCACHED_URL=http://127.0.0.1:8001 \
//   k6 run k6/cache_compare.js
//
// Env: DURATION (20s) per scenario, VUS (100), HOT_IDS (10 job ids per team
// for the detail query), QUERIES (list,detail,stats,logs), SUMMARY_FILE
// (write k6's JSON summary there), GAP (pause between scenarios, 2s).

import { Rate } from 'k6/metrics';
import {
  DETAIL_QUERY, LIST_QUERY, LIST_STATUSES, LOGS_QUERY, STATS_QUERY, TOKENS,
  durationSeconds, fetchTeamJobIds, fmt, gql, pad,
} from './lib.js';

const CACHED_URL = (__ENV.CACHED_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
const UNCACHED_URL = (__ENV.UNCACHED_URL || 'http://127.0.0.1:8001').replace(/\/$/, '');
const DURATION = __ENV.DURATION || '20s';
const VUS = parseInt(__ENV.VUS || '100', 10);
const HOT_IDS = parseInt(__ENV.HOT_IDS || '10', 10);
const GAP_S = durationSeconds(__ENV.GAP || '2s');
const GRACEFUL_STOP_S = 3;
const QUERIES = (__ENV.QUERIES || 'list,detail,stats,logs').split(',').map((s) => s.trim()).filter(Boolean);
const SERVERS = ['cached', 'uncached'];
const URLS = { cached: CACHED_URL, uncached: UNCACHED_URL };

const gqlErrors = new Rate('gql_errors');
const cacheHits = new Rate('cache_hits');

const durS = durationSeconds(DURATION);
const scenarios = {};
const thresholds = {
  // Any failed request or GraphQL error fails the run (exit code 99).
  gql_errors: ['rate<0.001'],
};
let slot = 0;
for (const q of QUERIES) {
  for (const s of SERVERS) {
    scenarios[`${q}_${s}`] = {
      executor: 'constant-vus',
      vus: VUS,
      duration: DURATION,
      gracefulStop: `${GRACEFUL_STOP_S}s`,
      startTime: `${slot * (durS + GRACEFUL_STOP_S + GAP_S)}s`,
      exec: 'run',
      env: { QUERY: q, SERVER: s },
    };
    slot += 1;
    // Thresholds on tagged sub-metrics make them appear in handleSummary.
    const sel = `{query:${q},server:${s}}`;
    thresholds[`http_req_duration${sel}`] = ['max>=0'];
    thresholds[`http_reqs${sel}`] = ['count>=0'];
    thresholds[`gql_errors${sel}`] = ['rate>=0'];
    thresholds[`cache_hits${sel}`] = ['rate>=0'];
  }
}

export const options = {
  scenarios,
  thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(95)', 'p(99)', 'count'],
  discardResponseBodies: false,
  setupTimeout: '60s',
};

export function setup() {
  // Same database behind both servers, so the ids are the same.
  const teams = fetchTeamJobIds(UNCACHED_URL, Math.max(HOT_IDS, 1));
  return teams.map((t) => ({ token: t.token, teamId: t.teamId, hot: t.jobIds.slice(0, HOT_IDS) }));
}

function pick(a) {
  return a[Math.floor(Math.random() * a.length)];
}

export function run(teams) {
  const q = __ENV.QUERY;
  const server = __ENV.SERVER;
  const team = pick(teams);
  const tags = { query: q, server };
  let res;
  switch (q) {
    case 'list':
      res = gql(URLS[server], team.token, LIST_QUERY, { status: pick(LIST_STATUSES) }, tags);
      break;
    case 'detail':
      res = gql(URLS[server], team.token, DETAIL_QUERY, { id: pick(team.hot) }, tags);
      break;
    case 'stats':
      res = gql(URLS[server], team.token, STATS_QUERY, undefined, tags);
      break;
    case 'logs':
      res = gql(URLS[server], team.token, LOGS_QUERY, undefined, tags);
      break;
    default:
      throw new Error(`unknown QUERY ${q}`);
  }
  // Cheap error check (no JSON parse at 100 VUs): an `"errors":` key can
  // only appear as a key, since quotes inside strings are escaped.
  const body = typeof res.body === 'string' ? res.body : '';
  const bad = res.status !== 200 || body.indexOf('"errors":') !== -1 || body.indexOf('"data":null') !== -1
    || (q === 'detail' && body.indexOf('"job":null') !== -1);
  if (bad && __ENV.DEBUG_ERRORS) console.warn(`${q}/${server}: HTTP ${res.status} ${body.slice(0, 300)}`);
  gqlErrors.add(bad, tags);
  cacheHits.add(res.headers['X-Cache'] === 'HIT', tags);
}

function sub(data, metric, q, s) {
  const m = data.metrics[`${metric}{query:${q},server:${s}}`];
  return m ? m.values : null;
}

export function handleSummary(data) {
  const rows = {};
  for (const q of QUERIES) {
    for (const s of SERVERS) {
      const d = sub(data, 'http_req_duration', q, s) || {};
      const n = sub(data, 'http_reqs', q, s) || {};
      const e = sub(data, 'gql_errors', q, s) || {};
      const h = sub(data, 'cache_hits', q, s) || {};
      rows[`${q}_${s}`] = {
        count: n.count || 0,
        rps: (n.count || 0) / durS,
        p50: d['p(50)'],
        p95: d['p(95)'],
        p99: d['p(99)'],
        err: e.rate,
        hit: h.rate,
      };
    }
  }
  const W = [8, 10, 9, 10, 9, 9, 9, 8, 7];
  const line = (cells) => cells.map((c, i) => pad(c, W[i], i < 2)).join(' ');
  const out = [];
  out.push('');
  out.push(`jobgraph cache comparison: ${VUS} VUs x ${DURATION} per scenario, ${TOKENS.length} team tokens, ${HOT_IDS} hot job ids per team`);
  out.push(`  cached   = ${CACHED_URL}`);
  out.push(`  uncached = ${UNCACHED_URL}`);
  out.push('');
  out.push(line(['query', 'server', 'req/s', 'requests', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'HIT']));
  out.push('-'.repeat(W.reduce((a, b) => a + b + 1, -1)));
  for (const q of QUERIES) {
    for (const s of SERVERS) {
      const r = rows[`${q}_${s}`];
      out.push(line([q, s, fmt(r.rps, 1), String(r.count), fmt(r.p50, 2), fmt(r.p95, 2), fmt(r.p99, 2),
        r.err === undefined ? '-' : `${fmt(r.err * 100, 2)}%`, r.hit === undefined ? '-' : `${fmt(r.hit * 100, 0)}%`]));
    }
  }
  out.push('');
  out.push('speed-up, cached vs uncached (req/s: cached/uncached; latency: uncached/cached):');
  const W2 = [8, 9, 9, 9, 9];
  const line2 = (cells) => cells.map((c, i) => pad(c, W2[i], i === 0)).join(' ');
  out.push(line2(['query', 'req/s x', 'p50 x', 'p95 x', 'p99 x']));
  for (const q of QUERIES) {
    const c = rows[`${q}_cached`];
    const u = rows[`${q}_uncached`];
    const ratio = (a, b) => (a && b ? `${fmt(a / b, 2)}` : '-');
    out.push(line2([q, ratio(c.rps, u.rps), ratio(u.p50, c.p50), ratio(u.p95, c.p95), ratio(u.p99, c.p99)]));
  }
  const total = data.metrics.gql_errors ? data.metrics.gql_errors.values : null;
  out.push('');
  out.push(`all requests: ${data.metrics.http_reqs ? data.metrics.http_reqs.values.count : 0}, error rate ${total ? fmt(total.rate * 100, 3) : '-'}%`);
  out.push('');
  const result = { stdout: out.join('\n') + '\n' };
  if (__ENV.SUMMARY_FILE) result[__ENV.SUMMARY_FILE] = JSON.stringify(data, null, 2);
  return result;
}
