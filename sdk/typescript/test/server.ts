// Starts a real Consentry server for the tests: the `consentry` binary built by cargo
// ($CARGO_TARGET_DIR/debug/consentry, or SERVER_BIN), on a free loopback port, with a fresh data folder.
// Without the binary the tests skip with a notice, and fail under CONSENTRY_REQUIRE_SERVICES=1 (as in CI).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ADMIN_KEY = "sdk-test-admin-key-0123456789-abcdefghijk";

export interface RunningServer {
  base: string;
  stop(): Promise<void>;
}

function binary(): string {
  if (process.env.SERVER_BIN) return process.env.SERVER_BIN;
  const here = dirname(fileURLToPath(import.meta.url));
  const root = resolve(here, "../../../..");
  const target = process.env.CARGO_TARGET_DIR ?? join(root, "target");
  return join(target, "debug", "consentry");
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      s.close(() => (typeof address === "object" && address !== null ? ok(address.port) : fail(new Error("no port"))));
    });
  });
}

/** A fresh server, or `undefined` (with a notice) when the binary is missing outside CI. */
export async function startServer(): Promise<RunningServer | undefined> {
  const bin = binary();
  if (!existsSync(bin)) {
    const notice = `no consentry binary at ${bin}: build it with 'cargo build -p consentry' (or set SERVER_BIN)`;
    if (process.env.CONSENTRY_REQUIRE_SERVICES === "1") throw new Error(notice);
    console.log(`SKIP: ${notice}`);
    return undefined;
  }
  const data = mkdtempSync(join(tmpdir(), "consentry-sdk-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // The server refuses CONSENTRY_* variables it does not know, so it gets none of ours.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("CONSENTRY_")) env[k] = v;
  }
  Object.assign(env, {
    CONSENTRY_DATA: join(data, "data"),
    CONSENTRY_LISTEN: `127.0.0.1:${port}`,
    CONSENTRY_PUBLIC_URL: base,
    CONSENTRY_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY,
    // The tests' webhook receiver listens on loopback, which a fresh install refuses as a destination.
    CONSENTRY_ALLOW_PRIVATE_DESTINATIONS: "127.0.0.0/8",
  });
  const log = join(data, "server.log");
  const fd = openSync(log, "w");
  const child: ChildProcess = spawn(bin, ["serve"], { env, stdio: ["ignore", "ignore", fd] });
  closeSync(fd);
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(data, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      const text = readFileSync(log, "utf8");
      await stop();
      throw new Error(`the server did not become ready:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, stop };
}
