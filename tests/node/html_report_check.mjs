// Opens a breakfix HTML report in Debian's Chromium (driven by playwright-core) and checks that
// it renders, that its table, charts and conversation browser work, and that none of the hostile
// text in it executes.
//
// Usage: node html_report_check.mjs REPORT.html SCREENSHOT.png EXPECTATIONS.json
// EXPECTATIONS.json: {"conversations": N, "unscorable": N, "families": N,
//                     "search": "text", "search_hits": N, "literal": ["text shown verbatim", ...]}
// Prints one JSON line with what it measured; exits 0 when every check passed, 1 otherwise.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [, , reportPath, screenshotPath, expectJson] = process.argv;
if (!reportPath || !screenshotPath || !expectJson) {
  console.error('usage: node html_report_check.mjs REPORT.html SCREENSHOT.png EXPECTATIONS.json');
  process.exit(2);
}
const want = JSON.parse(fs.readFileSync(expectJson, 'utf8'));
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakfix-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox'],
  viewport: { width: 1280, height: 900 },
});
const measured = {};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const dialogs = [];
  const pageErrors = [];
  const consoleErrors = [];
  const requests = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });

  const t0 = Date.now();
  await page.goto('file://' + path.resolve(reportPath), { waitUntil: 'load' });
  await page.waitForSelector('#bf-browser[data-ready="1"]', { timeout: 60000 });
  measured.ready_ms = Date.now() - t0;

  // The phi-3 table: one row per family, a value in every cell.
  const tableRows = await page.locator('table.bf-results tbody tr').count();
  check(tableRows === want.families, `results table has ${tableRows} rows, expected ${want.families}`);
  // Charts: bars with whiskers, visible.
  const bars = await page.locator('svg.bf-svg rect.bar').count();
  const whiskers = await page.locator('svg.bf-svg g.whisker').count();
  check(bars > 0 && whiskers > 0, `charts have ${bars} bars and ${whiskers} whiskers`);
  check(await page.locator('figure.bf-chart').first().isVisible(), 'the first chart is not visible');

  const countText = async () => (await page.locator('#bf-count').textContent()) ?? '';
  const total = `${want.conversations} of ${want.conversations} conversations`;
  check((await countText()) === total, `browser says "${await countText()}", expected "${total}"`);

  // Filter by outcome: unscorable.
  const outcome = page.locator('select[data-filter="outcome"]');
  const unscorableValue = await outcome.locator('option', { hasText: /^unscorable / }).getAttribute('value');
  await outcome.selectOption(unscorableValue);
  const unscorableText = `${want.unscorable} of ${want.conversations} conversations`;
  check((await countText()) === unscorableText, `unscorable filter: "${await countText()}", expected "${unscorableText}"`);
  await outcome.selectOption('');
  // Filter by family: the first family's count matches its option label.
  const family = page.locator('select[data-filter="family"]');
  const firstFamily = family.locator('option').nth(1);
  const label = (await firstFamily.textContent()) ?? '';
  const familyCount = Number((label.match(/\((\d+)\)$/) ?? [])[1]);
  await family.selectOption(await firstFamily.getAttribute('value'));
  check((await countText()).startsWith(`${familyCount} of `), `family filter: "${await countText()}" vs option "${label}"`);
  await family.selectOption('');
  // Score filter: score >= 1 leaves fewer rows than all.
  await page.locator('select[data-filter="score"]').selectOption('>1');
  const scored = Number((await countText()).split(' ')[0]);
  check(scored > 0 && scored < want.conversations, `score >= 1 filter left ${scored}`);
  await page.locator('select[data-filter="score"]').selectOption('');

  // Full-text search.
  const t1 = Date.now();
  await page.locator('input[data-filter="search"]').fill(want.search);
  const hits = `${want.search_hits} of ${want.conversations} conversations`;
  await page.waitForFunction((t) => document.querySelector('#bf-count').textContent === t, hits,
                             { timeout: 30000 }).catch(() => {});
  measured.search_ms = Date.now() - t1;
  check((await countText()) === hits, `search "${want.search}": "${await countText()}", expected "${hits}"`);
  await page.locator('input[data-filter="search"]').fill('');
  await page.waitForFunction((t) => document.querySelector('#bf-count').textContent === t, total,
                             { timeout: 30000 }).catch(() => {});

  // Open every conversation on every page, so every hostile string is in the document.
  let pages = 0;
  for (;;) {
    const rows = page.locator('tr.bf-row');
    const n = await rows.count();
    for (let i = 0; i < n; i++) await rows.nth(i).click();
    pages++;
    const next = page.locator('#bf-browser button', { hasText: 'next' });
    if (await next.isDisabled()) break;
    await next.click();
  }
  measured.pages = pages;
  // Back to page one, everything open: text is shown verbatim.
  while (!(await page.locator('#bf-browser button', { hasText: 'previous' }).isDisabled())) {
    await page.locator('#bf-browser button', { hasText: 'previous' }).click();
  }
  if ((await page.locator('tr.bf-detail-row').count()) === 0) {
    for (const row of await page.locator('tr.bf-row').all()) await row.click();
  }
  const opened = await page.locator('tr.bf-detail-row').count();
  check(opened === Math.min(want.conversations, await page.locator('tr.bf-row').count()),
        `${opened} transcripts open on page one`);
  const shown = await page.locator('#bf-browser').innerText();
  for (const literal of want.literal ?? []) {
    check(shown.includes(literal), `the browser does not show ${JSON.stringify(literal)} verbatim`);
  }
  const turnScores = await page.locator('.bf-turnscore').count();
  check(turnScores > 0, 'no per-turn judge scores are shown');

  // Nothing executed, nothing was injected, nothing was fetched.
  const dom = await page.evaluate(() => {
    let handlers = 0;
    for (const e of document.querySelectorAll('*')) {
      for (const a of e.attributes) if (a.name.toLowerCase().startsWith('on')) handlers++;
    }
    return {
      pwned: typeof window.__xss !== 'undefined' || typeof window.pwned !== 'undefined',
      handlers,
      scripts: document.querySelectorAll('script').length,
      injected: document.querySelectorAll(
        'img, iframe, object, embed, base, form, math, meta[http-equiv="refresh"], a[href^="javascript"], main style, main link').length,
      bodyVisible: getComputedStyle(document.body).display !== 'none' &&
                   document.querySelector('h1').getBoundingClientRect().height > 0,
    };
  });
  measured.dom = dom;
  check(!dom.pwned, 'a payload ran: window.__xss or window.pwned is set');
  check(dom.handlers === 0, `${dom.handlers} elements carry event-handler attributes`);
  check(dom.injected === 0, `${dom.injected} injected elements (img, iframe, base, ...) in the page`);
  check(dom.bodyVisible, 'the page no longer renders (body hidden or title gone)');
  check(dialogs.length === 0, `dialogs opened: ${JSON.stringify(dialogs)}`);
  check(pageErrors.length === 0, `page errors: ${JSON.stringify(pageErrors)}`);
  check(consoleErrors.length === 0, `console errors (a CSP refusal means markup got in): ${JSON.stringify(consoleErrors)}`);
  check(requests.length === 0, `the page fetched: ${JSON.stringify(requests)}`);

  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: screenshotPath, fullPage: false });
  check(fs.statSync(screenshotPath).size > 10000, 'the screenshot is (nearly) empty');
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify({ ok: failures.length === 0, measured, failures }));
process.exit(failures.length === 0 ? 0 : 1);
