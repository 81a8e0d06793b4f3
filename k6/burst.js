// Does a burst of background work slow the read path? One run, two phases
// against the same server: reads alone, then the same reads while one
// writer fires BURST (default 1000) generateResume calls as fast as it can.
// Reads are uncached list queries with a unique filter per request, so every
// read really runs SQL. Compare the read latencies of the two phases.
//
//   TOKENS_FILE=tokens.json BASE_URL=http://127.0.0.1:8000 k6 run k6/burst.js
//
// Env: VUS (reader VUs, default 20), PHASE (seconds per phase, default 20),
// BURST (default 1000).

import { check } from 'k6';
import { Trend, Counter } from 'k6/metrics';
import exec from 'k6/execution';
import { TOKENS, gql, parseGql, fetchTeamJobIds } from './lib.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8000';
const VUS = parseInt(__ENV.VUS || '20', 10);
const PHASE = parseInt(__ENV.PHASE || '20', 10);
const BURST = parseInt(__ENV.BURST || '1000', 10);

const readQuiet = new Trend('read_quiet_ms', true);
const readBurst = new Trend('read_during_burst_ms', true);
const generated = new Counter('generate_resume_calls');
const generateLatency = new Trend('generate_resume_ms', true);

export const options = {
  scenarios: {
    quiet: { executor: 'constant-vus', vus: VUS, duration: `${PHASE}s`, exec: 'read', tags: { phase: 'quiet' } },
    busy: {
      executor: 'constant-vus', vus: VUS, duration: `${PHASE}s`, exec: 'read',
      startTime: `${PHASE + 2}s`, tags: { phase: 'burst' },
    },
    burst: {
      executor: 'shared-iterations', vus: 10, iterations: BURST, maxDuration: `${PHASE}s`,
      exec: 'generate', startTime: `${PHASE + 4}s`, tags: { phase: 'burst' },
    },
  },
  thresholds: { checks: ['rate>0.99'] },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(95)', 'p(99)', 'count'],
};

const READ = 'query($search: String) { jobs(first: 20, filter: {search: $search}) { nodes { id title company team { name } createdBy { name } } } }';

export function setup() {
  return { teams: fetchTeamJobIds(BASE, 50) };
}

export function read(data) {
  const team = data.teams[exec.vu.idInTest % data.teams.length];
  // A unique filter per request: always a cache miss, always SQL.
  const res = gql(BASE, team.token, READ, { search: `zz${exec.scenario.iterationInTest}-${Math.random()}` });
  const r = parseGql(res);
  check(r, { 'read ok': (x) => x.ok });
  (exec.scenario.name === 'quiet' ? readQuiet : readBurst).add(res.timings.duration);
}

export function generate(data) {
  const team = data.teams[exec.scenario.iterationInTest % data.teams.length];
  const jobId = team.jobIds[exec.scenario.iterationInTest % team.jobIds.length];
  const res = gql(BASE, team.token, 'mutation($id: ID!) { generateResume(jobId: $id) { status } }', { id: jobId });
  const r = parseGql(res);
  check(r, { 'generateResume returned PENDING': (x) => x.ok && x.data.generateResume.status === 'PENDING' });
  generated.add(1);
  generateLatency.add(res.timings.duration);
}

function pct(trend, p) {
  const v = trend && trend.values ? trend.values[`p(${p})`] : undefined;
  return v === undefined ? 'n/a' : v.toFixed(2);
}

export function handleSummary(data) {
  const q = data.metrics.read_quiet_ms;
  const b = data.metrics.read_during_burst_ms;
  const g = data.metrics.generate_resume_ms;
  const rate = (t) => (t ? (t.values.count / PHASE).toFixed(0) : 'n/a');
  const lines = [
    '',
    `read path with and without a burst of ${BURST} generateResume calls (${VUS} reader VUs, ${PHASE}s per phase)`,
    'phase            reads/s     p50 ms    p95 ms    p99 ms',
    `quiet            ${rate(q).padStart(7)}   ${pct(q, 50).padStart(7)}   ${pct(q, 95).padStart(7)}   ${pct(q, 99).padStart(7)}`,
    `during burst     ${rate(b).padStart(7)}   ${pct(b, 50).padStart(7)}   ${pct(b, 95).padStart(7)}   ${pct(b, 99).padStart(7)}`,
    `generateResume calls: ${data.metrics.generate_resume_calls ? data.metrics.generate_resume_calls.values.count : 0}, p50 ${pct(g, 50)} ms, p99 ${pct(g, 99)} ms`,
    '',
  ];
  return { stdout: lines.join('\n') };
}
