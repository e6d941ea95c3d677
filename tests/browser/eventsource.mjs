#!/usr/bin/env node
// Drives a real browser's EventSource against a running server, for tests/browser.rs.
//
//   node tests/browser/eventsource.mjs '<json plan>'      (or '@plan.json' to read a file)
//
// The plan:
//   {
//     "page":    "http://127.0.0.1:8080/",   page to open first: its origin is the page's origin
//     "source":  "/events",                  EventSource URL, relative to the page (default: page)
//     "ignore_https_errors": true,           accept a self-signed certificate (https pages)
//     "types":   ["message", "tick"],        event types to listen for (default ["message"])
//     "timeout_ms": 20000,                   the whole run's limit (at most 30000)
//     "steps": [                             run in order, each bounded by what is left of the limit
//       {"wait": {"count": 2, "type": "message", "data": "hello"}},  until that many events match
//                                            (type and data optional; count defaults to 1;
//                                            "new": true counts only events after this step began)
//       {"wait_errors": 1},                  until the EventSource has reported that many errors
//       {"wait_opens": 2},                   until it has opened that many times
//       {"post": "/publish", "body": "hi"},  fetch(url, {method: "POST", body}) from the page
//       {"post": "/publish", "form": {"message": "hi"}},   the same, urlencoded
//       {"wait_selector": "#log li", "count": 3},          until the page shows that many matches
//       {"sleep_ms": 500}
//     ]
//   }
//
// Prints one JSON line on stdout, whatever happens:
//   {"ok": true|false, "error": "...", "events": [{"type", "data", "lastEventId", "t"}],
//    "opens": [t...], "errors": [t...], "posts": [{"url", "status", "body", "t"}]}
// where every t is milliseconds since the EventSource was created. Exits 0 when every step
// finished, 1 when one failed or timed out (with the reason on stderr too), 2 on a bad plan or a
// browser that cannot start.
//
// The browser is Debian's Chromium (/usr/bin/chromium, or $CHROMIUM), never a downloaded one, with
// the flags that work on a machine with no outside network, and a new empty profile each run
// (tests/browser/chromium.mjs).

import { readFileSync } from "node:fs";

import { failWith, launchChromium, limitRun } from "./chromium.mjs";

const fail = failWith("eventsource.mjs");

function readPlan() {
  const argument = process.argv[2];
  if (!argument) {
    fail(2, "usage: node eventsource.mjs '<json plan>' | @plan.json");
  }
  try {
    const text = argument.startsWith("@") ? readFileSync(argument.slice(1), "utf8") : argument;
    return JSON.parse(text);
  } catch (error) {
    fail(2, `the plan is not valid JSON: ${error.message}`);
  }
}

const plan = readPlan();
if (typeof plan.page !== "string") {
  fail(2, 'the plan needs "page", the URL of a page on the server\'s origin');
}
const { timeoutMs, deadline } = limitRun(plan, fail);
const types = Array.isArray(plan.types) && plan.types.length > 0 ? plan.types : ["message"];
const steps = Array.isArray(plan.steps) ? plan.steps : [];

const { context, close } = await launchChromium(deadline, fail, {
  ignoreHTTPSErrors: plan.ignore_https_errors === true,
});

let result = { ok: false, events: [], opens: [], errors: [], posts: [] };
let failure = null;
let page;
try {
  page = context.pages()[0] || (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error") process.stderr.write(`page console: ${message.text()}\n`);
  });
  await page.goto(plan.page, { timeout: remaining(), waitUntil: "domcontentloaded" });
  await page.evaluate(
    ({ source, types }) => {
      const started = performance.now();
      const now = () => Math.round(performance.now() - started);
      const log = { events: [], opens: [], errors: [], posts: [] };
      window.__eventsource = log;
      const eventSource = new EventSource(source || location.href);
      window.__eventsourceObject = eventSource;
      eventSource.addEventListener("open", () => log.opens.push(now()));
      eventSource.addEventListener("error", () => log.errors.push(now()));
      for (const type of types) {
        eventSource.addEventListener(type, (event) =>
          log.events.push({ type: event.type, data: event.data, lastEventId: event.lastEventId, t: now() }),
        );
      }
      window.__post = async (url, body, form) => {
        const t = now();
        if (form) body = new URLSearchParams(form);
        const response = await fetch(url, { method: "POST", body, cache: "no-store" });
        const entry = { url, status: response.status, body: await response.text(), t };
        log.posts.push(entry);
        return entry;
      };
    },
    { source: plan.source ?? null, types },
  );

  for (const [index, step] of steps.entries()) {
    const what = `step ${index + 1} ${JSON.stringify(step)}`;
    try {
      await runStep(step);
    } catch (error) {
      failure = `${what} did not finish: ${error.message.split("\n")[0]}`;
      break;
    }
  }
} catch (error) {
  failure = `the page failed: ${error.message.split("\n")[0]}`;
} finally {
  if (page) {
    try {
      const log = await page.evaluate(() => {
        window.__eventsourceObject?.close();
        return window.__eventsource;
      });
      if (log) result = { ...result, ...log };
    } catch {
      // The page is gone; report what is known.
    }
  }
  await close();
}

if (failure) {
  fail(1, failure, { events: result.events, opens: result.opens, errors: result.errors, posts: result.posts });
}
process.stdout.write(JSON.stringify({ ...result, ok: true }) + "\n");
process.exit(0);

function remaining() {
  const left = deadline - Date.now();
  if (left <= 0) throw new Error(`the ${timeoutMs} ms limit is used up`);
  return left;
}

async function runStep(step) {
  if (step.wait) {
    const { count = 1, type = null, data = null } = step.wait;
    const from = step.wait.new ? await page.evaluate(() => window.__eventsource.events.length) : 0;
    await page.waitForFunction(
      ({ count, type, data, from }) =>
        window.__eventsource.events
          .slice(from)
          .filter((event) => (type === null || event.type === type) && (data === null || event.data === data))
          .length >= count,
      { count, type, data, from },
      { timeout: remaining(), polling: 20 },
    );
  } else if (step.wait_errors !== undefined) {
    await page.waitForFunction((count) => window.__eventsource.errors.length >= count, step.wait_errors, {
      timeout: remaining(),
      polling: 20,
    });
  } else if (step.wait_opens !== undefined) {
    await page.waitForFunction((count) => window.__eventsource.opens.length >= count, step.wait_opens, {
      timeout: remaining(),
      polling: 20,
    });
  } else if (step.post !== undefined) {
    const entry = await withTimeout(
      page.evaluate(({ url, body, form }) => window.__post(url, body, form), {
        url: step.post,
        body: step.body ?? "",
        form: step.form ?? null,
      }),
      `POST ${step.post}`,
    );
    if (entry.status < 200 || entry.status > 299) {
      throw new Error(`POST ${step.post} answered ${entry.status}: ${entry.body}`);
    }
  } else if (step.wait_selector !== undefined) {
    await page.waitForFunction(
      ({ selector, count }) => document.querySelectorAll(selector).length >= count,
      { selector: step.wait_selector, count: step.count ?? 1 },
      { timeout: remaining(), polling: 20 },
    );
  } else if (step.sleep_ms !== undefined) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(step.sleep_ms, remaining())));
  } else {
    throw new Error("unknown step");
  }
}

function withTimeout(promise, what) {
  const limit = remaining();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${limit} ms`)), limit);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
