// jobgraph through the clients frontends use: Apollo Client 4 (relay-style
// pagination, a mutation updating the normalized cache, a GraphQLWsLink
// subscription hearing a teammate's change, automatic persisted queries),
// graphql-ws and graphql-sse directly, and graphql-js introspection of the
// live server, which must print the committed schema.graphql.
//
//   node apollo.mjs http://127.0.0.1:8000/graphql
import { readFileSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import {
  ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql,
} from '@apollo/client';
import { relayStylePagination, getMainDefinition } from '@apollo/client/utilities';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import WebSocket from 'ws';
import {
  buildClientSchema, buildSchema, getIntrospectionQuery, lexicographicSortSchema, printSchema,
} from 'graphql';

const url = process.argv[2] ?? process.env.JOBGRAPH_URL;
const wsUrl = url.replace(/^http/, 'ws');
const failures = [];
const limit = setTimeout(() => { console.log('FAIL: still running after 90 s'); process.exit(1); }, 90_000);

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (error) {
    failures.push(name);
    console.log(`FAIL ${name}: ${error?.stack ?? error}`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function post(query, variables = {}, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const tag = randomUUID().slice(0, 8);
const password = 'correct-horse-battery-staple';
const admin = (await post(
  'mutation($i: SignupInput!) { signup(input: $i) { token } }',
  { i: { teamName: `Apollo ${tag}`, name: 'Ada', email: `ada-${tag}@example.com`, password } },
)).signup.token;
await post(
  'mutation($i: CreateUserInput!) { createUser(input: $i) { id } }',
  { i: { name: 'Mel', email: `mel-${tag}@example.com`, role: 'MEMBER', password } },
  admin,
);
const member = (await post(
  'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
  { e: `mel-${tag}@example.com`, p: password },
)).login.token;

function apollo(token, extra = {}) {
  return new ApolloClient({
    link: extra.link ?? new HttpLink({ uri: url, headers: { authorization: `Bearer ${token}` } }),
    cache: new InMemoryCache({
      typePolicies: { Query: { fields: { jobs: relayStylePagination(['filter', 'orderBy']) } } },
    }),
  });
}

await check('relayStylePagination pages through a list', async () => {
  for (let i = 0; i < 7; i += 1) {
    await post('mutation($t: String!) { createJob(input: {title: $t, company: "Acme"}) { id } }', { t: `Paged ${i}` }, admin);
  }
  const client = apollo(admin);
  const JOBS = gql`query Jobs($after: String) {
    jobs(first: 3, after: $after) {
      edges { cursor node { id title } }
      pageInfo { hasNextPage endCursor }
    }
  }`;
  let result = await client.query({ query: JOBS });
  const watched = client.watchQuery({ query: JOBS });
  await watched.result?.();
  let pages = 1;
  let data = result.data;
  while (data.jobs.pageInfo.hasNextPage) {
    const more = await watched.fetchMore({ variables: { after: data.jobs.pageInfo.endCursor } });
    pages += 1;
    data = client.readQuery({ query: JOBS });
    assert(more.data.jobs.edges.length <= 3, 'a page larger than asked');
    assert(pages < 10, 'pagination does not end');
  }
  const titles = data.jobs.edges.map((e) => e.node.title);
  assert(titles.length === 7, `merged ${titles.length} edges: ${titles}`);
  assert(new Set(titles).size === 7, `duplicates: ${titles}`);
  assert(titles[0] === 'Paged 6', `newest first, got ${titles[0]}`);
  assert(pages === 3, `3 pages, got ${pages}`);
});

await check('a mutation updates the normalized cache', async () => {
  const client = apollo(admin);
  const { id } = (await post('mutation { createJob(input: {title: "Before", company: "Acme"}) { id } }', {}, admin)).createJob;
  const JOB = gql`query Job($id: ID!) { job(id: $id) { id title status } }`;
  const first = await client.query({ query: JOB, variables: { id } });
  assert(first.data.job.title === 'Before', JSON.stringify(first.data));
  await client.mutate({
    mutation: gql`mutation Rename($id: ID!) { updateJob(id: $id, input: {title: "After", status: APPLIED}) { id title status } }`,
    variables: { id },
  });
  const cached = client.readQuery({ query: JOB, variables: { id } });
  assert(cached.job.title === 'After' && cached.job.status === 'APPLIED', JSON.stringify(cached));
});

await check("a GraphQLWsLink subscription hears a teammate's change", async () => {
  const ws = createWsClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { Authorization: `Bearer ${member}` } });
  const http = new HttpLink({ uri: url, headers: { authorization: `Bearer ${member}` } });
  const link = ApolloLink.split(
    ({ query }) => {
      const d = getMainDefinition(query);
      return d.kind === 'OperationDefinition' && d.operation === 'subscription';
    },
    new GraphQLWsLink(ws),
    http,
  );
  const client = apollo(member, { link });
  const heard = new Promise((resolve, reject) => {
    const sub = client.subscribe({
      query: gql`subscription { jobEvents { kind jobId job { id title createdBy { name } } } }`,
    }).subscribe({
      next: ({ data, error }) => {
        if (error) { reject(error); return; }
        if (data.jobEvents.job?.title === 'Teammate job') { sub.unsubscribe(); resolve(data.jobEvents); }
      },
      error: reject,
    });
  });
  await new Promise((r) => setTimeout(r, 300));
  await post('mutation { createJob(input: {title: "Teammate job", company: "Acme"}) { id } }', {}, admin);
  const event = await Promise.race([heard, new Promise((_, r) => setTimeout(() => r(new Error('no event in 10 s')), 10_000))]);
  assert(event.kind === 'CREATED' && event.job.createdBy.name === 'Ada', JSON.stringify(event));
  await ws.dispose();
});

await check('graphql-sse (distinct connections) streams an event', async () => {
  const client = createSseClient({ url, headers: { Authorization: `Bearer ${member}` }, retryAttempts: 0 });
  const heard = new Promise((resolve, reject) => {
    const stop = client.subscribe({ query: 'subscription { jobEvents { job { title } } }' }, {
      next: (v) => { if (v.data?.jobEvents.job?.title === 'Over SSE') { stop(); resolve(); } },
      error: reject,
      complete: () => {},
    });
  });
  await new Promise((r) => setTimeout(r, 300));
  await post('mutation { createJob(input: {title: "Over SSE", company: "Acme"}) { id } }', {}, admin);
  await Promise.race([heard, new Promise((_, r) => setTimeout(() => r(new Error('no event in 10 s')), 10_000))]);
  client.dispose();
});

await check('persisted queries: the hash is registered once, then sent alone', async () => {
  const bodies = [];
  const recording = (input, init) => { bodies.push(init?.body ? JSON.parse(init.body) : { get: String(input) }); return fetch(input, init); };
  const sha256 = (text) => createHash('sha256').update(text).digest('hex');
  const make = () => createPersistedQueryLink({ sha256 }).concat(
    new HttpLink({ uri: url, headers: { authorization: `Bearer ${admin}` }, fetch: recording }),
  );
  const QUERY = gql`query Persisted${tag} { jobs(first: 2) { totalCount } }`;
  const first = await apollo(admin, { link: make() }).query({ query: QUERY });
  assert(first.data.jobs.totalCount >= 1, JSON.stringify(first.data));
  assert(bodies.length === 2 && !bodies[0].query && bodies[1].query, `expected a miss then a registration: ${JSON.stringify(bodies)}`);
  bodies.length = 0;
  const second = await apollo(admin, { link: make() }).query({ query: QUERY });
  assert(second.data.jobs.totalCount === first.data.jobs.totalCount, 'same answer');
  assert(bodies.length === 1 && !bodies[0].query && bodies[0].extensions.persistedQuery, `expected the hash alone: ${JSON.stringify(bodies)}`);
});

await check('introspection of the live server prints schema.graphql', async () => {
  const data = await post(getIntrospectionQuery());
  const live = printSchema(lexicographicSortSchema(buildClientSchema(data)));
  const committed = printSchema(lexicographicSortSchema(buildSchema(readFileSync(process.env.SCHEMA_FILE, 'utf8'))));
  assert(live === committed, 'the live schema differs from schema.graphql');
  assert(live.includes('type Subscription'), 'no Subscription type');
});

clearTimeout(limit);
if (failures.length) {
  console.log(`${failures.length} client check(s) failed: ${failures.join(', ')}`);
  process.exit(1);
}
process.exit(0);
