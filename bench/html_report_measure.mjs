// Times what a reader does with a breakfix HTML report in Debian's Chromium (playwright-core):
// load until the browser is ready, filter, first and second full-text search, next page, open a
// transcript. Prints one JSON object: {"ms": {...}, "js_heap_mb": N, "rows": N}.
// Usage: node bench/html_report_measure.mjs REPORT.html SCREENSHOT.png
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.resolve('tests/node/package.json'));
const { chromium } = require('playwright-core');

const [, , reportPath, screenshotPath] = process.argv;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakfix-bench-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox'],
  viewport: { width: 1280, height: 900 },
});
const ms = {};
let heap = 0;
let rows = 0;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const count = () => page.locator('#bf-count').textContent();
  const waitCount = (prefix) =>
    page.waitForFunction((p) => document.querySelector('#bf-count').textContent.startsWith(p),
                         prefix, { timeout: 300000, polling: 10 });
  let t = Date.now();
  await page.goto('file://' + path.resolve(reportPath), { waitUntil: 'load', timeout: 300000 });
  await page.waitForSelector('#bf-browser[data-ready="1"]', { timeout: 300000 });
  ms['open until the browser is ready'] = Date.now() - t;
  rows = Number(((await count()) ?? '').split(' ')[0]);

  const outcome = page.locator('select[data-filter="outcome"]');
  const value = await outcome.locator('option', { hasText: /^unscorable / }).getAttribute('value');
  t = Date.now();
  await outcome.selectOption(value);
  await page.waitForFunction((n) => !document.querySelector('#bf-count').textContent.startsWith(n + ' '),
                             rows, { polling: 5 });
  ms['filter by outcome'] = Date.now() - t;
  await outcome.selectOption('');

  const search = page.locator('input[data-filter="search"]');
  t = Date.now();
  await search.fill(`item ${Math.floor(rows * 0.87)} kind`);
  await waitCount('1 of ');
  ms['first search (parses every chunk)'] = Date.now() - t - 200;  // minus the 200 ms debounce
  await search.fill('');
  await waitCount(rows + ' of ');
  t = Date.now();
  await search.fill(`item ${Math.floor(rows * 0.13)} kind`);
  await waitCount('1 of ');
  ms['second search'] = Date.now() - t - 200;
  await search.fill('');
  await waitCount(rows + ' of ');

  const next = page.locator('#bf-browser button', { hasText: 'next' });
  if (!(await next.isDisabled())) {
    t = Date.now();
    await next.click();
    await page.waitForFunction(() => document.querySelector('#bf-page').textContent.startsWith('page 2 '));
    ms['next page'] = Date.now() - t;
  }
  t = Date.now();
  await page.locator('tr.bf-row').first().click();
  await page.locator('tr.bf-detail-row').first().waitFor();
  ms['open a transcript'] = Date.now() - t;

  const metrics = await page.evaluate(() => performance.memory ? performance.memory.usedJSHeapSize : 0);
  heap = Math.round(metrics / 1048576);
  await page.screenshot({ path: screenshotPath });
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify({ ms, js_heap_mb: heap, rows }));
