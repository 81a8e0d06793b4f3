// A realistic read/write mix against one jobgraph (BASE_URL).
//
// VUs are spread over all team tokens (VU n uses team n mod teams). About 95%
// of iterations are reads spread over list / detail / stats / logs, with a
// skewed choice of job ids (a few ids far hotter than the rest); about 5% are
// writes: updateJob status changes on random jobs of the VU's team and a few
// createJob. setup and teardown read GET /metrics, and the summary reports
// the cache hit rate over the run (hits / (hits + misses), overall and per
// kind), and req/s and p50/p95/p99 for reads and writes separately.
//
//   TOKENS_FILE=/tmp/k6work/tokens.json BASE_URL=http://127.0.0.1:8000 \
//   k6 run k6/mix.js
//
// Env: VUS (100), DURATION (60s), WRITE_RATIO (0.05), CREATE_SHARE (0.2 of
// writes are createJob), READ_MIX (list:0.35,detail:0.35,stats:0.15,logs:0.15),
// IDS_PER_TEAM (50), SKEW (3: index = n * rand^SKEW), SLEEP (think time per
// iteration in seconds, 0), SUMMARY_FILE, DEBUG_ERRORS (log failed bodies).
//
// Every write makes the whole team's lists, stats and logs stale, so their
// hit rate is bounded by how many reads of a key a team makes between two of
// its writes; when a miss takes longer than the gap between a team's writes
// (a saturated server), list/stats/logs hits collapse and only coalescing
// (the "no exec" column) saves work. Compare runs at the same VUs/SLEEP.

import { check, sleep } from 'k6';
import { Counter, Gauge, Rate } from 'k6/metrics';
import {
  ALL_STATUSES, CREATE_JOB_MUTATION, DETAIL_QUERY, LIST_QUERY, LIST_STATUSES, LOGS_QUERY,
  STATS_QUERY, TOKENS, UPDATE_JOB_MUTATION, fetchTeamJobIds, fmt, gql, pad, parseGql,
  scrapeCacheMetrics,
} from './lib.js';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
const VUS = parseInt(__ENV.VUS || '100', 10);
const DURATION = __ENV.DURATION || '60s';
const WRITE_RATIO = parseFloat(__ENV.WRITE_RATIO || '0.05');
const CREATE_SHARE = parseFloat(__ENV.CREATE_SHARE || '0.2');
const IDS_PER_TEAM = parseInt(__ENV.IDS_PER_TEAM || '50', 10);
const SKEW = parseFloat(__ENV.SKEW || '3');
const SLEEP = parseFloat(__ENV.SLEEP || '0');

// Share of reads per query, READ_MIX="list:0.35,detail:0.35,stats:0.15,logs:0.15"
// (normalised to add up to 1).
const READ_MIX = (() => {
  const pairs = (__ENV.READ_MIX || 'list:0.35,detail:0.35,stats:0.15,logs:0.15').split(',').map((p) => {
    const [name, w] = p.split(':');
    if (!['list', 'detail', 'stats', 'logs'].includes(name.trim())) throw new Error(`READ_MIX: unknown query ${name}`);
    return [name.trim(), parseFloat(w)];
  });
  const sum = pairs.reduce((acc, [, w]) => acc + w, 0);
  return pairs.map(([n, w]) => [n, w / sum]);
})();
const KINDS = ['jobs_list', 'job_detail', 'job_stats', 'logs'];

const gqlErrors = new Rate('gql_errors');
const cacheHeaderHits = new Rate('x_cache_hit');
const writesDone = new Counter('writes_done');
// Filled in teardown from the /metrics difference.
const G = {};
for (const k of ['all', ...KINDS]) {
  for (const w of ['hits', 'misses', 'bypasses', 'coalesced', 'rate']) {
    G[`${w}_${k}`] = new Gauge(`cache_${w}_${k}`);
  }
}
const runSeconds = new Gauge('run_seconds');
const server200 = new Gauge('server_graphql_200');

export const options = {
  scenarios: {
    mix: { executor: 'constant-vus', vus: VUS, duration: DURATION, gracefulStop: '5s' },
  },
  thresholds: {
    gql_errors: ['rate<0.001'],
    checks: ['rate>0.999'],
    'http_req_duration{kind:read}': ['max>=0'],
    'http_req_duration{kind:write}': ['max>=0'],
    'http_reqs{kind:read}': ['count>=0'],
    'http_reqs{kind:write}': ['count>=0'],
    'gql_errors{kind:read}': ['rate>=0'],
    'gql_errors{kind:write}': ['rate>=0'],
    'x_cache_hit{op:list}': ['rate>=0'],
    'x_cache_hit{op:detail}': ['rate>=0'],
    'x_cache_hit{op:stats}': ['rate>=0'],
    'x_cache_hit{op:logs}': ['rate>=0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(95)', 'p(99)', 'count'],
  setupTimeout: '60s',
};

export function setup() {
  const teams = fetchTeamJobIds(BASE_URL, IDS_PER_TEAM);
  // Read the counters after the setup's own requests.
  const before = scrapeCacheMetrics(BASE_URL);
  if (!before.ok) throw new Error(`GET ${BASE_URL}/metrics failed`);
  return { teams, before, startedAt: Date.now() };
}

function pick(a) {
  return a[Math.floor(Math.random() * a.length)];
}

// Index into a list of n with a heavy skew to the front.
function skewed(n) {
  return Math.min(n - 1, Math.floor(n * Math.pow(Math.random(), SKEW)));
}

function weighted(mix) {
  let r = Math.random();
  for (const [name, w] of mix) {
    if (r < w) return name;
    r -= w;
  }
  return mix[mix.length - 1][0];
}

function send(team, op, query, variables) {
  const kind = op === 'update' || op === 'create' ? 'write' : 'read';
  const tags = { kind, op };
  const res = gql(BASE_URL, team.token, query, variables, tags);
  const r = parseGql(res);
  let ok = r.ok;
  if (ok && op === 'detail' && r.data.job === null) ok = false;
  if (!ok && __ENV.DEBUG_ERRORS) console.warn(`${op}: HTTP ${res.status} ${String(res.body).slice(0, 300)}`);
  check(res, { 'no GraphQL errors': () => ok }, tags);
  gqlErrors.add(!ok, tags);
  if (kind === 'read') cacheHeaderHits.add(res.headers['X-Cache'] === 'HIT', tags);
  else if (ok) writesDone.add(1, tags);
  return r;
}

export default function (data) {
  const team = data.teams[(__VU - 1) % data.teams.length];
  if (Math.random() < WRITE_RATIO) {
    if (Math.random() < CREATE_SHARE) {
      send(team, 'create', CREATE_JOB_MUTATION, {
        title: `k6 job ${__VU}-${__ITER}`,
        company: pick(['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli']),
      });
    } else {
      send(team, 'update', UPDATE_JOB_MUTATION, { id: pick(team.jobIds), status: pick(ALL_STATUSES) });
    }
  } else {
    switch (weighted(READ_MIX)) {
      case 'list':
        send(team, 'list', LIST_QUERY, { status: LIST_STATUSES[skewed(LIST_STATUSES.length)] });
        break;
      case 'detail':
        send(team, 'detail', DETAIL_QUERY, { id: team.jobIds[skewed(team.jobIds.length)] });
        break;
      case 'stats':
        send(team, 'stats', STATS_QUERY);
        break;
      default:
        send(team, 'logs', LOGS_QUERY);
    }
  }
  if (SLEEP > 0) sleep(SLEEP);
}

export function teardown(data) {
  const after = scrapeCacheMetrics(BASE_URL);
  if (!after.ok) {
    console.warn(`GET ${BASE_URL}/metrics failed in teardown; no hit rate`);
    return;
  }
  const d = (what, k) => (after[what][k] || 0) - ((data.before[what] || {})[k] || 0);
  const totals = { hits: 0, misses: 0, bypasses: 0, coalesced: 0 };
  for (const k of KINDS) {
    const v = { hits: d('hits', k), misses: d('misses', k), bypasses: d('bypasses', k), coalesced: d('coalesced', k) };
    for (const w of Object.keys(v)) {
      G[`${w}_${k}`].add(v[w]);
      totals[w] += v[w];
    }
    G[`rate_${k}`].add(v.hits + v.misses > 0 ? v.hits / (v.hits + v.misses) : 0);
  }
  for (const w of Object.keys(totals)) G[`${w}_all`].add(totals[w]);
  G.rate_all.add(totals.hits + totals.misses > 0 ? totals.hits / (totals.hits + totals.misses) : 0);
  runSeconds.add((Date.now() - data.startedAt) / 1000);
  server200.add(after.graphql200 - data.before.graphql200);
}

function val(data, name, stat) {
  const m = data.metrics[name];
  return m ? m.values[stat] : undefined;
}

export function handleSummary(data) {
  const secs = val(data, 'run_seconds', 'value');
  const out = [];
  out.push('');
  out.push(`jobgraph mix: ${VUS} VUs x ${DURATION} against ${BASE_URL}, ${TOKENS.length} teams, write ratio ${WRITE_RATIO}`);
  out.push('');
  const W = [7, 10, 9, 9, 9, 9, 8];
  const line = (cells) => cells.map((c, i) => pad(c, W[i], i === 0)).join(' ');
  out.push(line(['', 'requests', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors']));
  for (const kind of ['read', 'write']) {
    const n = val(data, `http_reqs{kind:${kind}}`, 'count') || 0;
    const dur = (s) => val(data, `http_req_duration{kind:${kind}}`, s);
    out.push(line([kind + 's', String(n), secs ? fmt(n / secs, 1) : '-', fmt(dur('p(50)'), 2), fmt(dur('p(95)'), 2),
      fmt(dur('p(99)'), 2), `${fmt((val(data, `gql_errors{kind:${kind}}`, 'rate') || 0) * 100, 2)}%`]));
  }
  const errRate = val(data, 'gql_errors', 'rate');
  const errN = val(data, 'gql_errors', 'passes');
  out.push(`GraphQL/HTTP errors: ${errN || 0} (${errRate === undefined ? '-' : fmt(errRate * 100, 3)}%), checks passed ${fmt((val(data, 'checks', 'rate') || 0) * 100, 2)}%, writes ok ${val(data, 'writes_done', 'count') || 0}`);
  out.push('');
  out.push('cache over the run (from /metrics; hit rate = hits / (hits + misses); coalesced misses');
  out.push('shared a concurrent miss\'s execution, so "no exec" = (hits + coalesced) / (hits + misses)):');
  const W2 = [11, 9, 9, 9, 10, 10, 9];
  const line2 = (cells) => cells.map((c, i) => pad(c, W2[i], i === 0)).join(' ');
  out.push(line2(['kind', 'hits', 'misses', 'bypass', 'coalesced', 'hit rate', 'no exec']));
  for (const k of [...KINDS, 'all']) {
    const g = (w) => val(data, `cache_${w}_${k}`, 'value');
    if (g('hits') === undefined) continue;
    out.push(line2([k === 'all' ? 'overall' : k, String(g('hits')), String(g('misses')), String(g('bypasses')),
      String(g('coalesced')), `${fmt(g('rate') * 100, 1)}%`,
      g('hits') + g('misses') > 0 ? `${fmt(((g('hits') + g('coalesced')) / (g('hits') + g('misses'))) * 100, 1)}%` : '-']));
  }
  if (val(data, 'cache_hits_all', 'value') === undefined) out.push('  (no /metrics numbers: teardown did not run or /metrics failed)');
  const hdr = ['list', 'detail', 'stats', 'logs'].map((op) => `${op} ${fmt((val(data, `x_cache_hit{op:${op}}`, 'rate') || 0) * 100, 0)}%`);
  out.push(`X-Cache: HIT seen by k6: ${hdr.join(', ')}`);
  const s200 = val(data, 'server_graphql_200', 'value');
  if (s200 !== undefined && secs) out.push(`server-side /graphql 200s: ${s200} (${fmt(s200 / secs, 1)}/s over ${fmt(secs, 1)} s)`);
  out.push('');
  const result = { stdout: out.join('\n') + '\n' };
  if (__ENV.SUMMARY_FILE) result[__ENV.SUMMARY_FILE] = JSON.stringify(data, null, 2);
  return result;
}
