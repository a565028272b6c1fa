// Runs `token-rate-limiter count-tokens` of the build under test (TRL_BIN_DIR). Large inputs are
// streamed to stdin with backpressure while stdout and stderr are read concurrently, so neither
// side can fill a pipe and block the other.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export function binary() {
  const dir = process.env.TRL_BIN_DIR;
  if (!dir) throw new Error("TRL_BIN_DIR is not set: it names the directory of token-rate-limiter");
  const file = path.join(dir, "token-rate-limiter");
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: build the gateway first`);
  return file;
}

// Runs count-tokens with ARGS, writing the Buffers or strings of CHUNKS to its stdin.
// Resolves { code, stdout, stderr } (stdout and stderr as strings).
export function countTokens(args, chunks) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary(), ["count-tokens", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({
      code: code ?? signal,
      stdout: Buffer.concat(out).toString("utf8"),
      stderr: Buffer.concat(err).toString("utf8"),
    }));
    child.stdin.on("error", () => {}); // EPIPE when the CLI exits early (refused file): the status says why
    (async () => {
      for (const chunk of chunks) {
        if (!child.stdin.write(chunk)) {
          await new Promise((r) => { child.stdin.once("drain", r); child.once("close", r); });
          if (child.exitCode !== null || child.signalCode !== null) return;
        }
      }
      child.stdin.end();
    })();
  });
}

// Batches lines into chunks of about 64 KB so the write loop stays cheap.
function* chunked(lines) {
  let batch = [];
  let size = 0;
  for (const line of lines) {
    batch.push(line, "\n");
    size += line.length + 1;
    if (size >= 65536) {
      yield batch.join("");
      batch = [];
      size = 0;
    }
  }
  if (batch.length) yield batch.join("");
}

// One count-tokens --jsonl process for all INPUTS (strings, or request bodies with `chat`).
// Resolves { code, stderr, results }: results[i] is the parsed output line of inputs[i] (an ids
// array with ids, else a count).
export async function runJsonl(spec, inputs, { ids = true, chat = null } = {}) {
  const args = ["--tokenizer", spec, "--jsonl"];
  if (ids) args.push("--ids");
  if (chat) args.push("--chat", chat);
  const run = await countTokens(args, chunked(inputs.map((x) => JSON.stringify(x))));
  const lines = run.stdout.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const results = run.code === 0 ? lines.map((l) => JSON.parse(l)) : [];
  if (run.code === 0 && results.length !== inputs.length) {
    throw new Error(`count-tokens printed ${results.length} lines for ${inputs.length} inputs`);
  }
  return { code: run.code, stderr: run.stderr, results };
}

// One count-tokens process on the raw BYTES (no --jsonl). Resolves { code, stderr, value }.
export async function runRaw(spec, bytes, { ids = true } = {}) {
  const args = ["--tokenizer", spec];
  if (ids) args.push("--ids");
  const run = await countTokens(args, [bytes]);
  return { code: run.code, stderr: run.stderr, value: run.code === 0 ? JSON.parse(run.stdout) : null };
}

// Maps ITEMS through async F with at most LIMIT calls in flight; results in input order.
export async function mapLimit(items, limit, f) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await f(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
