// GraphiQL at `/` in a headless Chromium (Debian's, never a downloaded one), against a running
// `dispatchd serve --demo`, with every request to another host refused and counted as a failure:
//
//   node graphiql.mjs http://127.0.0.1:8080        (DISPATCHER_TOKEN from the demo's demo.env)
//
// 1. `/?query={ __typename }` opens that query; executing it without a token shows
//    `"__typename": "Query"` (GraphiQL's schema fetch may be refused without a token: it shows
//    that error, and the page works).
// 2. GraphiQL's settings dialog opens without a CSP violation (it inserts a <style> with the nonce).
// 3. The token pasted in the headers editor runs a subscription over /graphql/ws: the
//    connection_init payload carries `Authorization`, the events of the demo's orders replayed
//    from cursor 0 are shown; stopping it closes the WebSocket.
// 4. Loaded again, with `?query=` and without: the headers editor still holds the token, and the
//    schema is fetched with it.
//
// Any uncaught page error, console error, CSP violation or request to another host fails the run.
import { chromium } from 'playwright-core';

const usage = 'usage: node graphiql.mjs http://127.0.0.1:PORT (with DISPATCHER_TOKEN set)';
const base = parseUrl(process.argv[2] ?? process.env.DISPATCHD_BASE_URL);
const token = process.env.DISPATCHER_TOKEN;
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const STEP_MS = Number(process.env.GRAPHIQL_STEP_TIMEOUT_MS ?? 20_000);

if (!base || !/^https?:$/.test(base.protocol)) fail(`no server URL given: ${usage}`);
if (!token) fail('DISPATCHER_TOKEN is not set (source the demo.env that `dispatchd serve --demo` wrote)');

const problems = [];
const foreign = [];

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

function step(name) {
  console.log(`- ${name}`);
}

const browser = await launch();
let error;
try {
  await run();
} catch (e) {
  error = e;
}
await browser.close();
const report = [];
if (error) report.push(error.stack ?? String(error));
if (foreign.length) report.push(`requests to hosts other than ${base.host} (refused):\n  ${foreign.join('\n  ')}`);
if (problems.length) report.push(`the page reported problems:\n  ${problems.join('\n  ')}`);
if (report.length) fail(report.join('\n'));
console.log('PASS: GraphiQL works offline: query over HTTP, subscription over the WebSocket, token persisted');

async function launch() {
  try {
    return await chromium.launch({
      executablePath,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  } catch (e) {
    fail(`cannot start Chromium at ${executablePath} (apt-get install chromium): ${e.message}`);
  }
}

function parseUrl(text) {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

async function run() {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  // Only this server: anything else is refused before it leaves the browser, and reported.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.host === base.host) return route.continue();
    foreign.push(`${route.request().method()} ${route.request().url()}`);
    return route.abort('blockedbyclient');
  });
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });

  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const graphqlUrl = new URL('/graphql', base).href;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium logs every 4xx answer. A 401 from /graphql is the server refusing the schema to a
    // caller without a token (DISPATCHD_INTROSPECTION=authenticated): GraphiQL shows it, and works.
    if (m.location().url === graphqlUrl && /status of 401\b/.test(m.text())) return;
    problems.push(`console error: ${m.text()}`);
  });
  page.on('requestfailed', (r) => {
    if (new URL(r.url()).host === base.host) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  const sockets = [];
  page.on('websocket', (ws) => {
    const record = { url: ws.url(), sent: [], received: [], closed: false };
    sockets.push(record);
    if (new URL(ws.url()).host !== base.host) foreign.push(`WebSocket ${ws.url()}`);
    ws.on('framesent', (f) => record.sent.push(json(f.payload)));
    ws.on('framereceived', (f) => record.received.push(json(f.payload)));
    ws.on('close', () => (record.closed = true));
  });

  step('/?query={ __typename } without a token');
  await page.goto(new URL('/?query=' + encodeURIComponent('{ __typename }'), base).href);
  await waitForGraphiQL(page);
  const initial = await editor(page, 'query');
  if (initial.trim() !== '{ __typename }') throw new Error(`?query= not in the query editor: ${JSON.stringify(initial)}`);
  await page.click('.graphiql-execute-button');
  await waitForResult(page, (r) => r.includes('"__typename": "Query"'), 'the result "__typename": "Query"');

  step("GraphiQL's settings dialog (an inline <style> with the page's nonce)");
  await page.click('button[aria-label="Open settings dialog"]');
  await page.waitForSelector('.graphiql-dialog', { timeout: STEP_MS });
  await page.keyboard.press('Escape');
  await page.waitForSelector('.graphiql-dialog', { state: 'detached', timeout: STEP_MS });

  step('the token pasted in the headers editor, a subscription over /graphql/ws');
  const headers = JSON.stringify({ Authorization: `Bearer ${token}` });
  await setEditor(page, 'headers', headers);
  // GraphiQL saves an edit 0.5 to 1 s later: a reload before that would lose it.
  await waitFor(
    () =>
      page.evaluate((token) => {
        const state = JSON.parse(localStorage.getItem('graphiql:tabState') ?? 'null');
        return Boolean(state?.tabs?.[state.activeTabIndex]?.headers?.includes(token));
      }, token),
    'GraphiQL to save the headers in localStorage',
  );
  await setEditor(page, 'query', 'subscription { workOrderEvents(after: "0") { cursor kind workOrder { title } } }');
  // GraphiQL parses the query editor 100 ms after a change; until then, it would run the previous
  // document's operation type (a query, over HTTP).
  await waitFor(
    () =>
      page.evaluate(() => {
        const cm = document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror;
        return cm?.documentAST?.definitions?.[0]?.operation === 'subscription';
      }),
    'GraphiQL to parse the subscription',
  );
  const before = sockets.length;
  await page.click('.graphiql-execute-button');
  await waitForResult(
    page,
    (r) => r.includes('"workOrderEvents"') && r.includes('"cursor"') && r.includes('"title"'),
    'an event of workOrderEvents',
  );
  const ws = sockets[before];
  if (!ws) throw new Error('no WebSocket was opened for the subscription');
  const wsUrl = new URL(ws.url);
  if (wsUrl.protocol !== 'ws:' || wsUrl.host !== base.host || wsUrl.pathname !== '/graphql/ws') {
    throw new Error(`the WebSocket went to ${ws.url}, not ws://${base.host}/graphql/ws`);
  }
  const init = ws.sent.find((m) => m?.type === 'connection_init');
  if (init?.payload?.Authorization !== `Bearer ${token}`) {
    throw new Error(`connection_init did not carry the token: ${JSON.stringify(init)}`);
  }
  for (const type of ['connection_ack', 'next']) {
    if (!ws.received.some((m) => m?.type === type)) throw new Error(`no ${type} received: ${JSON.stringify(ws.received)}`);
  }
  if (!ws.sent.some((m) => m?.type === 'subscribe')) throw new Error('no subscribe sent');
  // The button stops a running subscription; the client then closes its idle connection.
  await page.click('.graphiql-execute-button');
  await waitFor(() => ws.closed, 'the WebSocket to close once the subscription was stopped');
  await collectCspViolations(page);

  // GraphiQL 3 alone loses the headers at the second load (and in a tab opened by ?query=):
  // the page's script carries them over; two loads, with and without ?query=.
  for (const path of ['/?query=' + encodeURIComponent('{ __typename }'), '/']) {
    step(`${path} again: the token still in the headers editor, the schema fetched with it`);
    const introspection = page.waitForResponse(
      (r) => r.url() === graphqlUrl && (r.request().postData() ?? '').includes('IntrospectionQuery'),
      { timeout: STEP_MS },
    );
    await page.goto(new URL(path, base).href);
    await waitForGraphiQL(page);
    const response = await introspection;
    const sent = await response.request().headerValue('authorization');
    if (sent !== `Bearer ${token}`) throw new Error(`the schema was fetched without the token (Authorization: ${sent})`);
    const body = await response.json();
    if (!body?.data?.__schema) throw new Error(`the schema was not fetched: ${JSON.stringify(body).slice(0, 300)}`);
    await waitFor(async () => (await editor(page, 'headers')).includes(token), 'the persisted token in the headers editor');
    await collectCspViolations(page);
  }
}

async function collectCspViolations(page) {
  problems.push(...(await page.evaluate(() => window.__cspViolations)).map((v) => `CSP violation: ${v}`));
}

async function waitForGraphiQL(page) {
  try {
    await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: STEP_MS });
  } catch {
    const shown = await page.evaluate(() => document.body?.innerText.slice(0, 200)).catch(() => '?');
    throw new Error(`GraphiQL did not render within ${STEP_MS} ms; the page shows ${JSON.stringify(shown)}`);
  }
}

function json(payload) {
  try {
    return JSON.parse(payload);
  } catch {
    return payload;
  }
}

// The CodeMirror instance of GraphiQL's query, headers or result editor.
function editorHandle(page, which) {
  return page.evaluateHandle((which) => {
    const all = [...document.querySelectorAll('.graphiql-container .CodeMirror')].map((el) => el.CodeMirror);
    if (which === 'query') return document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror;
    if (which === 'result') return document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror;
    // The headers editor is the one in JSON mode (the variables editor's mode is graphql-variables).
    return all.find((cm) => cm.getOption('mode')?.json === true);
  }, which);
}

async function editor(page, which) {
  const cm = await editorHandle(page, which);
  return cm.evaluate((cm) => (cm ? cm.getValue() : ''));
}

async function setEditor(page, which, value) {
  const cm = await editorHandle(page, which);
  const ok = await cm.evaluate((cm, value) => {
    if (!cm) return false;
    cm.setValue(value);
    return true;
  }, value);
  if (!ok) throw new Error(`GraphiQL's ${which} editor was not found`);
}

async function waitFor(condition, what) {
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${STEP_MS} ms waiting for ${what}`);
}

async function waitForResult(page, accept, what) {
  let last = '';
  try {
    await waitFor(async () => accept((last = await editor(page, 'result'))), what);
  } catch (e) {
    throw new Error(`${e.message}; the result pane shows: ${last.slice(0, 500) || '(nothing)'}`);
  }
}
