#!/usr/bin/env node
// Opens a page whose WebSocket the server closes with a code and reason of its choosing, and
// reports the browser's CloseEvent, for tests/browser.rs.
//
//   node tests/browser/websocket_close.mjs '<json plan>'
//
// The plan: {"page": "http://127.0.0.1:PORT/?ws=PORT2", "timeout_ms": 20000}. The page sets
// body[data-closed] once its socket closed, with the event's code, reason and wasClean.
//
// Prints one JSON line: {"ok": true, "code": 4001, "reason": "...", "wasClean": true,
// "messages": [...]} (or "ok": false with "error"). Exits 0 on a close, 1 without one, 2 on a
// bad plan or a browser that cannot start.

import { failWith, launchChromium, limitRun } from "./chromium.mjs";

const fail = failWith("websocket_close.mjs");

let plan;
try {
  plan = JSON.parse(process.argv[2] ?? "");
} catch (error) {
  fail(2, `usage: node websocket_close.mjs '<json plan>' (${error.message})`);
}
if (typeof plan.page !== "string") {
  fail(2, 'the plan needs "page"');
}
const { deadline } = limitRun(plan, fail);
const { context, close } = await launchChromium(deadline, fail);

let result = null;
let failure = null;
let page = null;
try {
  page = context.pages()[0] || (await context.newPage());
  await page.goto(plan.page, { timeout: deadline - Date.now(), waitUntil: "domcontentloaded" });
  await page.waitForSelector("body[data-closed]", { state: "attached", timeout: deadline - Date.now() });
  result = await page.evaluate(() => JSON.parse(document.body.dataset.closed));
} catch (error) {
  failure = error.message.split("\n")[0];
  try {
    // What the page got before it failed.
    const seen = await page.evaluate(() => ({ state: document.body.dataset.state, messages }));
    failure += ` (page: ${JSON.stringify(seen)})`;
  } catch {
    // The page is gone.
  }
}
await close();
if (failure) {
  fail(1, failure);
}
process.stdout.write(JSON.stringify({ ok: true, ...result }) + "\n");
process.exit(0);
