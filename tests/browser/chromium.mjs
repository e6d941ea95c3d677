// What the browser harness scripts share: Debian's Chromium (/usr/bin/chromium, or $CHROMIUM),
// never a downloaded one, started through playwright-core with the flags that work on a machine
// with no outside network, in a new empty profile each run; and the way a script fails.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** No run may take longer than this, whatever its plan asks. */
export const HARD_LIMIT_MS = 30_000;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A `fail(code, message, extra)` for `script`: the reason on stderr, one JSON line on stdout. */
export function failWith(script) {
  return function fail(code, message, extra = {}) {
    process.stderr.write(`${script}: ${message}\n`);
    process.stdout.write(JSON.stringify({ ok: false, error: message, ...extra }) + "\n");
    process.exit(code);
  };
}

/** The plan's limit (default 20 s, at most HARD_LIMIT_MS); the process ends 5 s after it. */
export function limitRun(plan, fail) {
  const timeoutMs = Math.min(Number(plan.timeout_ms) || 20_000, HARD_LIMIT_MS);
  // Whatever hangs (the browser, a page), the process ends shortly after the limit.
  setTimeout(() => fail(1, `hard timeout: still running after ${timeoutMs + 5000} ms`), timeoutMs + 5000).unref();
  return { timeoutMs, deadline: Date.now() + timeoutMs };
}

/**
 * Starts Chromium; `close()` ends it and removes its profile. `ignoreHTTPSErrors` accepts a
 * test's self-signed certificate (Chromium's certificate-error switch).
 */
export async function launchChromium(deadline, fail, { ignoreHTTPSErrors = false } = {}) {
  let playwright;
  try {
    playwright = await import("playwright-core");
  } catch (error) {
    fail(2, `playwright-core is not installed (${error.code || error.message}); run: npm ci --prefix tests/browser`);
  }
  const profile = mkdtempSync(join(tmpdir(), "workerman-chromium-"));
  try {
    const context = await playwright.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      ignoreHTTPSErrors,
      timeout: Math.max(1000, deadline - Date.now()),
    });
    const close = async () => {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    };
    return { context, close };
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    fail(2, `cannot start ${CHROMIUM} (${error.message.split("\n")[0]}); install it: apt-get install -y chromium`);
  }
}
