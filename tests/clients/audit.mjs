// The graphql-http server audit against a running jobgraph: every MUST and
// SHOULD of the GraphQL-over-HTTP spec that the audit checks. Exits 1 on
// any MUST or SHOULD miss (MAY items are reported only).
//
//   node audit.mjs http://127.0.0.1:8000/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2] ?? process.env.JOBGRAPH_URL;
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}
const results = await auditServer({ url });
const tally = {};
let failed = 0;
for (const result of results) {
  const level = result.name.split(' ')[0];
  tally[level] ??= { ok: 0, total: 0 };
  tally[level].total += 1;
  if (result.status === 'ok') {
    tally[level].ok += 1;
  } else {
    const hard = level === 'MUST' || level === 'SHOULD';
    if (hard) failed += 1;
    const detail = result.reason ?? '';
    console.log(`${hard ? 'FAIL' : 'note'} ${result.id} ${result.name}: ${detail}`);
  }
}
for (const [level, { ok, total }] of Object.entries(tally)) {
  console.log(`graphql-http audit: ${level} ${ok}/${total}`);
}
process.exit(failed === 0 ? 0 : 1);
