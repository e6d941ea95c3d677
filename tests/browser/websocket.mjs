#!/usr/bin/env node
// Drives a chat page that talks WebSocket in real browser tabs, for tests/browser.rs.
//
//   node tests/browser/websocket.mjs '<json plan>'
//
// The plan:
//   {
//     "page":  "http://127.0.0.1:8095/",     the chat page
//     "tabs":  2,                            how many tabs open it (default 2)
//     "ready": "body[data-state=open]",      the page shows this once its WebSocket is open
//     "input": "#text",                      the text field; a message is typed there + Enter
//     "log":   "#log li",                    one element per chat line
//     "say":   ["hello"],                    typed in the first tab, in order, each once every
//                                            tab shows it (a line containing it)
//     "timeout_ms": 20000                    the whole run's limit (at most 30000)
//   }
//
// Prints one JSON line on stdout, whatever happens:
//   {"ok": true|false, "error": "...", "tabs": [{"lines": [...], "sockets": [{"url", "sent": [...],
//    "received": [...], "closed": bool}]}]}
// Exits 0 when every message reached every tab, 1 when not (the reason on stderr too), 2 on a
// bad plan or a browser that cannot start.
//
// The browser is Debian's Chromium (/usr/bin/chromium, or $CHROMIUM), with the same flags and
// fresh profile (tests/browser/chromium.mjs).

import { failWith, launchChromium, limitRun } from "./chromium.mjs";

const fail = failWith("websocket.mjs");

let plan;
try {
  plan = JSON.parse(process.argv[2] ?? "");
} catch (error) {
  fail(2, `usage: node websocket.mjs '<json plan>' (${error.message})`);
}
if (typeof plan.page !== "string" || !Array.isArray(plan.say)) {
  fail(2, 'the plan needs "page" and "say"');
}
const { timeoutMs, deadline } = limitRun(plan, fail);
const tabCount = Math.max(1, Number(plan.tabs) || 2);
const ready = plan.ready || "body[data-state=open]";
const input = plan.input || "#text";
const log = plan.log || "#log li";

const { context, close } = await launchChromium(deadline, fail);

const remaining = () => {
  const left = deadline - Date.now();
  if (left <= 0) throw new Error(`the ${timeoutMs} ms limit is used up`);
  return left;
};

const tabs = [];
let failure = null;
try {
  for (let index = 0; index < tabCount; index++) {
    const page = index === 0 ? context.pages()[0] || (await context.newPage()) : await context.newPage();
    const tab = { page, sockets: [] };
    // What went over the wire, as the browser's DevTools saw it.
    page.on("websocket", (socket) => {
      const record = { url: socket.url(), sent: [], received: [], closed: false };
      tab.sockets.push(record);
      socket.on("framesent", (frame) => record.sent.push(String(frame.payload)));
      socket.on("framereceived", (frame) => record.received.push(String(frame.payload)));
      socket.on("close", () => (record.closed = true));
    });
    page.on("console", (message) => {
      if (message.type() === "error") process.stderr.write(`tab ${index} console: ${message.text()}\n`);
    });
    await page.goto(plan.page, { timeout: remaining(), waitUntil: "domcontentloaded" });
    await page.waitForSelector(ready, { timeout: remaining() });
    tabs.push(tab);
  }
  for (const text of plan.say) {
    await tabs[0].page.fill(input, text, { timeout: remaining() });
    await tabs[0].page.press(input, "Enter", { timeout: remaining() });
    for (const [index, tab] of tabs.entries()) {
      try {
        await tab.page.waitForFunction(
          ({ log, text }) => [...document.querySelectorAll(log)].some((line) => line.textContent.includes(text)),
          { log, text },
          { timeout: remaining(), polling: 20 },
        );
      } catch (error) {
        throw new Error(`tab ${index} never showed ${JSON.stringify(text)}: ${error.message.split("\n")[0]}`);
      }
    }
  }
} catch (error) {
  failure = error.message.split("\n")[0];
}

const report = [];
for (const tab of tabs) {
  let lines = [];
  try {
    lines = await tab.page.evaluate((log) => [...document.querySelectorAll(log)].map((line) => line.textContent), log);
  } catch {
    // The page is gone; report what is known.
  }
  report.push({ lines, sockets: tab.sockets });
}
await close();

if (failure) {
  fail(1, failure, { tabs: report });
}
process.stdout.write(JSON.stringify({ ok: true, tabs: report }) + "\n");
process.exit(0);
