// The graphql-http server audits (GraphQL-over-HTTP spec conformance) against a running server.
//
//   node audit.mjs http://127.0.0.1:8080/graphql
//
// Prints every audit with its result, grouped by MUST / SHOULD / MAY, and the counts. Exits
// non-zero unless every MUST and every SHOULD passes and every failing MAY is one of
// KNOWN_MAY_FAILURES below (each with the reason it is left failing).
import { serverAudits } from 'graphql-http';

// MAY audits this server fails on purpose, by audit id, with the reason. A MAY failing that is
// not listed here fails the run (a regression); a listed one that passes is reported as stale.
const KNOWN_MAY_FAILURES = {};

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <url of the GraphQL endpoint>');
  process.exit(2);
}

const levels = ['MUST', 'SHOULD', 'MAY'];
const results = [];
for (const audit of serverAudits({ url })) {
  results.push(await audit.fn());
}

async function describe(res) {
  if (!res) return '';
  let body = '';
  try {
    body = await res.clone().text();
  } catch {
    body = '(body already read)';
  }
  if (body.length > 200) body = `${body.slice(0, 200)}…`;
  return `HTTP ${res.status}, content-type ${res.headers.get('content-type') ?? '(none)'}: ${body}`;
}

let failed = false;
const counts = {};
for (const level of levels) {
  const mine = results.filter((r) => r.name.startsWith(`${level} `));
  const passed = mine.filter((r) => r.status === 'ok').length;
  counts[level] = `${passed}/${mine.length}`;
  console.log(`\n${level} (${passed}/${mine.length} pass)`);
  for (const r of mine) {
    const known = KNOWN_MAY_FAILURES[r.id];
    if (r.status === 'ok') {
      console.log(`  ok    ${r.id} ${r.name}${known ? '  [listed as a known MAY failure: remove it from the list]' : ''}`);
      continue;
    }
    const accepted = level === 'MAY' && known;
    if (!accepted) failed = true;
    console.log(`  ${accepted ? 'left ' : 'FAIL '} ${r.id} ${r.name}`);
    console.log(`          ${r.reason}; ${await describe(r.response)}`);
    if (accepted) console.log(`          left failing: ${known}`);
  }
}

console.log(`\ngraphql-http server audits against ${url}: MUST ${counts.MUST}, SHOULD ${counts.SHOULD}, MAY ${counts.MAY}`);
if (failed) {
  console.log('FAILED: a MUST or SHOULD audit fails, or a MAY audit fails that is not a known, explained one');
  process.exit(1);
}
console.log('passed: every MUST and SHOULD, and every MAY but the known ones');
