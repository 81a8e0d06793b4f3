// Does a burst of background work slow the read path? One run, two phases
// against the same server: reads alone, then the same reads while one
// writer fires BURST (default 1000) generateResume calls as fast as it can.
// Reads arrive at a fixed RATE (an open model: the latency of each read is
// measured, not hidden by fewer reads being sent). Each read is a list page
// with a unique `createdBefore`, so it is always a cache miss and really
// runs its SQL (an index range scan). Compare the two phases.
//
//   TOKENS_FILE=tokens.json BASE_URL=http://127.0.0.1:8000 k6 run k6/burst.js
//
// Env: RATE (reads per second, default 200), PHASE (seconds per phase,
// default 20), BURST (default 1000).

import { check } from 'k6';
import { Trend, Counter } from 'k6/metrics';
import exec from 'k6/execution';
import { TOKENS, gql, parseGql, fetchTeamJobIds } from './lib.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8000';
const RATE = parseInt(__ENV.RATE || '200', 10);
const PHASE = parseInt(__ENV.PHASE || '20', 10);
const BURST = parseInt(__ENV.BURST || '1000', 10);

const readQuiet = new Trend('read_quiet_ms', true);
const readBurst = new Trend('read_during_burst_ms', true);
const generated = new Counter('generate_resume_calls');
const generateLatency = new Trend('generate_resume_ms', true);

export const options = {
  scenarios: {
    quiet: {
      executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: `${PHASE}s`,
      preAllocatedVUs: 50, maxVUs: 200, exec: 'read', tags: { phase: 'quiet' },
    },
    busy: {
      executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: `${PHASE}s`,
      preAllocatedVUs: 50, maxVUs: 200, exec: 'read', startTime: `${PHASE + 2}s`, tags: { phase: 'burst' },
    },
    burst: {
      executor: 'shared-iterations', vus: 10, iterations: BURST, maxDuration: `${PHASE}s`,
      exec: 'generate', startTime: `${PHASE + 4}s`, tags: { phase: 'burst' },
    },
  },
  thresholds: { checks: ['rate>0.99'] },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(95)', 'p(99)', 'count'],
};

const READ = 'query($before: DateTime) { jobs(first: 20, filter: {createdBefore: $before}) { nodes { id title company team { name } createdBy { name } } } }';

export function setup() {
  return { teams: fetchTeamJobIds(BASE, 50) };
}

export function read(data) {
  const team = data.teams[exec.scenario.iterationInTest % data.teams.length];
  // A unique filter per request: always a cache miss, always SQL.
  const before = new Date(Date.now() - Math.floor(Math.random() * 90 * 86400000)).toISOString();
  const res = gql(BASE, team.token, READ, { before });
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
    `read path with and without a burst of ${BURST} generateResume calls (${RATE} reads/s, ${PHASE}s per phase)`,
    'phase            reads/s     p50 ms    p95 ms    p99 ms',
    `quiet            ${rate(q).padStart(7)}   ${pct(q, 50).padStart(7)}   ${pct(q, 95).padStart(7)}   ${pct(q, 99).padStart(7)}`,
    `during burst     ${rate(b).padStart(7)}   ${pct(b, 50).padStart(7)}   ${pct(b, 95).padStart(7)}   ${pct(b, 99).padStart(7)}`,
    `generateResume calls: ${data.metrics.generate_resume_calls ? data.metrics.generate_resume_calls.values.count : 0}, p50 ${pct(g, 50)} ms, p99 ${pct(g, 99)} ms`,
    '',
  ];
  return { stdout: lines.join('\n') };
}
