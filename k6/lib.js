// Shared helpers for the jobgraph k6 scripts (no remote imports: the
// scripts must run offline).
//
//   TOKENS_FILE  JSON written by `jobgraph seed --tokens-file ...`:
//                [{"teamId":1,"userId":1,"token":"..."}, ...]
//                A relative path is taken from the folder k6 was started in.

import http from 'k6/http';

// ---------------------------------------------------------------- queries

export const LIST_QUERY =
  'query($status: JobStatus) { jobs(first: 20, filter: {status: $status}) { totalCount nodes { id title company status team { name } createdBy { name } } } }';

export const DETAIL_QUERY =
  'query($id: ID!) { job(id: $id) { id title company status description createdBy { name } resumes { status } } }';

export const STATS_QUERY =
  '{ jobStats { total byStatus { status count } topCompanies(limit: 5) { company count } createdLast7Days } }';

export const LOGS_QUERY =
  '{ logs(first: 20) { totalCount nodes { action message createdAt user { name } } } }';

export const IDS_QUERY = 'query($first: Int) { jobs(first: $first) { nodes { id } } }';

export const UPDATE_JOB_MUTATION =
  'mutation($id: ID!, $status: JobStatus!) { updateJob(id: $id, input: {status: $status}) { id status } }';

export const CREATE_JOB_MUTATION =
  'mutation($title: String!, $company: String!) { createJob(input: {title: $title, company: $company}) { id } }';

// A few statuses for the list query; `null` is the unfiltered list.
export const LIST_STATUSES = [null, 'SAVED', 'APPLIED', 'INTERVIEWING'];
export const ALL_STATUSES = ['SAVED', 'APPLIED', 'INTERVIEWING', 'OFFER', 'REJECTED', 'ARCHIVED'];

// ---------------------------------------------------------------- tokens

function resolvePath(p) {
  if (p.startsWith('/') || p.startsWith('file://')) return p;
  // k6 resolves open() against the script's folder; make a relative
  // TOKENS_FILE mean "relative to where k6 was started" instead.
  const cwd = __ENV.PWD;
  return cwd ? `${cwd}/${p}` : p;
}

// Runs in the init context of every script that imports this module.
export const TOKENS = (() => {
  const file = __ENV.TOKENS_FILE;
  if (!file) throw new Error('set TOKENS_FILE to the tokens.json written by `jobgraph seed --tokens-file`');
  const parsed = JSON.parse(open(resolvePath(file)));
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed[0].token) {
    throw new Error(`${file}: expected a non-empty array of {teamId, userId, token}`);
  }
  return parsed;
})();

// ---------------------------------------------------------------- requests

// POSTs one GraphQL request. The body is built the same way for the same
// arguments, so identical requests are byte-identical (the cache key).
export function gql(baseUrl, token, query, variables, tags) {
  const body = variables === undefined || variables === null
    ? JSON.stringify({ query })
    : JSON.stringify({ query, variables });
  return http.post(`${baseUrl}/graphql`, body, {
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Bearer ${token}`,
    },
    tags: tags || {},
  });
}

// Parses a GraphQL response; returns {ok, data, errors}. ok means HTTP 200,
// a JSON body with `data` and no `errors`.
export function parseGql(res) {
  if (!res || res.status !== 200 || !res.body) {
    return { ok: false, data: null, errors: [{ message: `HTTP ${res ? res.status : '?'} ${res && res.error ? res.error : ''}` }] };
  }
  let json;
  try {
    json = JSON.parse(res.body);
  } catch (e) {
    return { ok: false, data: null, errors: [{ message: `bad JSON: ${e}` }] };
  }
  const errors = json.errors && json.errors.length ? json.errors : null;
  return { ok: !errors && json.data != null, data: json.data, errors };
}

// For each team token, fetches `perTeam` (default 50) job ids of that team.
// Returns [{teamId, userId, token, jobIds: [...]}].
export function fetchTeamJobIds(baseUrl, perTeam) {
  const n = perTeam || 50;
  return TOKENS.map((t) => {
    const res = gql(baseUrl, t.token, IDS_QUERY, { first: n }, { name: 'setup_ids' });
    const r = parseGql(res);
    if (!r.ok) {
      throw new Error(`setup: listing jobs of team ${t.teamId} at ${baseUrl} failed: ${JSON.stringify(r.errors)}`);
    }
    const jobIds = r.data.jobs.nodes.map((j) => j.id);
    if (jobIds.length === 0) throw new Error(`setup: team ${t.teamId} has no jobs (seed the database first)`);
    return { teamId: t.teamId, userId: t.userId, token: t.token, jobIds };
  });
}

// ---------------------------------------------------------------- misc

// "20s", "1m30s", "500ms", "2h" -> seconds.
export function durationSeconds(s) {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const units = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  let m;
  let matched = false;
  while ((m = re.exec(String(s))) !== null) {
    total += parseFloat(m[1]) * units[m[2]];
    matched = true;
  }
  if (!matched) {
    const n = parseFloat(s);
    if (Number.isNaN(n)) throw new Error(`bad duration: ${s}`);
    return n;
  }
  return total;
}

// Reads GET /metrics and returns the cache counters per kind plus the
// /graphql request counters: {hits: {kind: n}, misses: {...}, bypasses: {...},
// coalesced: {...}, errors: {...}, graphql200: n}.
export function scrapeCacheMetrics(baseUrl) {
  const res = http.get(`${baseUrl}/metrics`, { tags: { name: 'metrics' } });
  const out = { hits: {}, misses: {}, bypasses: {}, coalesced: {}, errors: {}, graphql200: 0, ok: res.status === 200 };
  if (res.status !== 200) return out;
  const names = {
    jobgraph_cache_hits_total: 'hits',
    jobgraph_cache_misses_total: 'misses',
    jobgraph_cache_bypasses_total: 'bypasses',
    jobgraph_cache_coalesced_total: 'coalesced',
    jobgraph_cache_errors_total: 'errors',
  };
  for (const line of res.body.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(line);
    if (!m) continue;
    const value = parseFloat(m[3]);
    if (names[m[1]]) {
      const kind = /kind="([^"]+)"/.exec(m[2]);
      if (kind) out[names[m[1]]][kind[1]] = value;
    } else if (m[1] === 'jobgraph_http_requests_total' && m[2].includes('route="/graphql"') && m[2].includes('status="200"')) {
      out.graphql200 = value;
    }
  }
  return out;
}

export function fmt(n, digits) {
  if (n === undefined || n === null || Number.isNaN(n)) return '-';
  return Number(n).toFixed(digits === undefined ? 1 : digits);
}

export function pad(s, w, left) {
  const str = String(s);
  if (str.length >= w) return str;
  const fill = ' '.repeat(w - str.length);
  return left ? str + fill : fill + str;
}
