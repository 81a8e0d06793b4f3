// jobgraph's GraphiQL page in headless Chromium: the page loads without
// console errors or CSP violations, the docs pane shows the schema, a
// subscription streams over SSE into the result pane, and a plain query
// runs with the Headers editor's token. Exits 1 on any failure.
//
//   node graphiql.mjs http://127.0.0.1:8000/graphql
import { chromium } from 'playwright-core';

const url = process.argv[2] ?? process.env.JOBGRAPH_URL;
if (!url) {
  console.error('usage: node graphiql.mjs <graphql url>');
  process.exit(2);
}

const deadline = setTimeout(() => {
  console.log('FAIL timeout: gave up after 60 s');
  process.exit(1);
}, 60_000);

let failures = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (error) {
    failures += 1;
    console.log(`FAIL ${name}: ${error?.message ?? error}`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function gql(query, { variables, token } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors) throw new Error(`${query.slice(0, 40)}…: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function poll(what, fn, ms = 10_000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A user of a fresh team, made from Node.
const tag = Math.random().toString(36).slice(2, 10);
const email = `gia-${tag}@example.com`;
const { signup } = await gql('mutation($i: SignupInput!) { signup(input: $i) { token } }', {
  variables: {
    i: { teamName: `GraphiQL ${tag}`, name: 'Gia', email, password: 'correct-horse-battery-staple' },
  },
});
const token = signup.token;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();

  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = msg.location()?.url ?? '';
    errors.push(`console: ${msg.text()} ${where}`);
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  // CSP violations are also reported as console errors; this catches them
  // even when the browser keeps quiet.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  const sseRequests = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && (req.headers().accept ?? '').startsWith('text/event-stream')) {
      sseRequests.push(req);
    }
  });

  // The editors: the query editor, the visible one of the editor tools
  // (Variables and Headers share a section; the inactive one is hidden)
  // and the read-only result pane. All are CodeMirror 5 instances.
  const editor = {
    query: '.graphiql-query-editor .CodeMirror',
    headers: '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror',
    result: '.graphiql-response .CodeMirror, .result-window .CodeMirror',
  };
  const getValue = (sel) => page.evaluate((s) => document.querySelector(s).CodeMirror.getValue(), sel);
  const setValue = (sel, value) =>
    page.evaluate(([s, v]) => document.querySelector(s).CodeMirror.setValue(v), [sel, value]);
  const runButton = page.locator('.graphiql-execute-button');

  // Run at once after the edit: init.js picks the transport from the
  // query text, not from GraphiQL's parse (refreshed 100 ms later).
  async function run(query) {
    await setValue(editor.query, query);
    await runButton.click();
  }

  await check('page loads without console errors or CSP violations', async () => {
    const res = await page.goto(url);
    assert(res.ok(), `GET ${url} answered ${res.status()}`);
    assert((res.headers()['content-type'] ?? '').startsWith('text/html'), 'not served as HTML');
    assert(res.headers()['content-security-policy'], 'no Content-Security-Policy header');
    await page.locator(editor.query).waitFor({ timeout: 15_000 });
    await page.waitForLoadState('networkidle');
    const csp = await page.evaluate(() => window.__csp);
    assert(csp.length === 0, `CSP violations: ${csp.join('; ')}`);
    assert(errors.length === 0, errors.join('; '));
  });

  await check('docs pane lists the root types', async () => {
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const docs = page.locator('.graphiql-doc-explorer');
    await docs.locator('.graphiql-doc-explorer-root-type').first().waitFor({ timeout: 10_000 });
    const roots = await docs.locator('.graphiql-doc-explorer-root-type').allTextContents();
    for (const root of ['query', 'mutation', 'subscription']) {
      assert(roots.includes(root), `root types are ${JSON.stringify(roots)}`);
    }
  });

  await check('docs pane shows the Query fields', async () => {
    const docs = page.locator('.graphiql-doc-explorer');
    await docs.locator('.graphiql-doc-explorer-type-name', { hasText: /^Query$/ }).first().click();
    await docs.locator('.graphiql-doc-explorer-title', { hasText: /^Query$/ }).waitFor({ timeout: 5000 });
    const fields = await docs.locator('.graphiql-doc-explorer-field-name').allTextContents();
    for (const field of ['jobs', 'job', 'jobStats', 'viewer', 'logs']) {
      assert(fields.includes(field), `no ${field} among ${JSON.stringify(fields)}`);
    }
  });

  await check('the Headers editor takes the token', async () => {
    await page.locator('.graphiql-editor-tools button[data-name="headers"]').click();
    const before = await getValue(editor.headers);
    assert(before.includes('Authorization'), `visible tool editor holds ${JSON.stringify(before)}, not the headers`);
    await setValue(editor.headers, JSON.stringify({ Authorization: `Bearer ${token}` }));
    assert((await getValue(editor.query)) !== (await getValue(editor.headers)), 'query and headers editor are the same');
  });

  await check('a subscription streams into the result pane', async () => {
    await run('subscription { jobEvents { kind job { title } } }');
    await page.waitForTimeout(500);
    assert(sseRequests.length === 1, `expected one text/event-stream request, saw ${sseRequests.length}`);
    const auth = sseRequests[0].headers().authorization;
    assert(auth === `Bearer ${token}`, `SSE request sent authorization ${JSON.stringify(auth)}`);
    await gql('mutation { createJob(input: {title: "Seen in GraphiQL", company: "C"}) { id } }', { token });
    await poll('"Seen in GraphiQL" in the result pane', async () =>
      (await getValue(editor.result)).includes('Seen in GraphiQL'),
    ).catch(async (error) => {
      throw new Error(`${error.message}; result pane: ${(await getValue(editor.result)).slice(0, 300)}`);
    });
  });

  await check('the subscription stops', async () => {
    const label = await runButton.getAttribute('aria-label');
    assert(/stop/i.test(label ?? ''), `run button says ${JSON.stringify(label)} while subscribed`);
    await runButton.click();
    await poll('the run button to read Execute again', async () =>
      /execute/i.test((await runButton.getAttribute('aria-label')) ?? ''), 5000);
  });

  await check('a plain query runs with the headers', async () => {
    await run('{ viewer { email } }');
    await poll(`${email} in the result pane`, async () => (await getValue(editor.result)).includes(email))
      .catch(async (error) => {
        throw new Error(`${error.message}; result pane: ${(await getValue(editor.result)).slice(0, 300)}`);
      });
  });

  await check('no console errors or CSP violations afterwards', async () => {
    const csp = await page.evaluate(() => window.__csp);
    assert(csp.length === 0, `CSP violations: ${csp.join('; ')}`);
    assert(errors.length === 0, errors.join('; '));
  });
} finally {
  await browser.close();
  clearTimeout(deadline);
}

console.log(failures === 0 ? 'graphiql: all checks passed' : `graphiql: ${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
