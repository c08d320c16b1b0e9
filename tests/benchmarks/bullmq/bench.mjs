// BullMQ's side of jobqueue's benchmark suite: one workload per process.
//
//   node bench.mjs <prefill|drain|latency|add|add-bulk|paced> --port P --count N
//        [--concurrency C] [--handler noop|incr] [--batch 1000] [--rate 100] [--timeout-s S]
//
// Driven by tests/benchmarks/_bullmq.py, with the same protocol as the Python
// children (tests/benchmarks/_common.py): "READY" when a worker listens, then one
// "RESULT {json}" line. Timestamps are process.hrtime (CLOCK_MONOTONIC on Linux),
// the clock the Python side's time.monotonic() reads, so a Python driver and a
// node producer stamp on one clock. Every loop is bounded by --count and the whole
// process by --timeout-s. Redis is the driver's own, on 127.0.0.1.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const QUEUE = "bench";
const PAYLOAD_BYTES = 100;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: "string" },
    count: { type: "string", default: "0" },
    concurrency: { type: "string", default: "1" },
    handler: { type: "string", default: "noop" },
    batch: { type: "string", default: "1000" },
    rate: { type: "string", default: "100" },
    "timeout-s": { type: "string", default: "120" },
  },
});
const mode = positionals[0];
const connection = { host: "127.0.0.1", port: Number(values.port), maxRetriesPerRequest: null };
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const batch = Number(values.batch);

const now = () => Number(process.hrtime.bigint()) / 1e9;
const payload = (stamp = 0) => {
  const head = `${stamp.toFixed(6)}|`;
  return head + "x".repeat(PAYLOAD_BYTES - head.length);
};
const stampOf = (data) => Number(data.split("|", 1)[0]);

function peakRssMiB() {
  // VmHWM starts afresh at exec; ru_maxrss would include the forking parent's.
  const line = readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmHWM:"));
  return Number(line.split(/\s+/)[1]) / 1024;
}

function cpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

function report(data) {
  process.stdout.write(`RESULT ${JSON.stringify(data)}\n`);
}

const timeout = setTimeout(() => {
  process.stderr.write(`bench.mjs ${mode}: no result within ${values["timeout-s"]} s\n`);
  process.exit(3);
}, Number(values["timeout-s"]) * 1000);
timeout.unref();

async function withQueue(body) {
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  try {
    return await body(queue);
  } finally {
    await queue.close();
  }
}

async function prefill() {
  // Untimed setup for a drain: addBulk, 1,000 jobs a call.
  await withQueue(async (queue) => {
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      await queue.addBulk(Array.from({ length: n }, () => ({ name: "noop", data: payload() })));
    }
  });
  report({ count });
}

async function addSequential() {
  await withQueue(async (queue) => {
    await queue.add("noop", payload()); // connect and load scripts outside the timing
    const cpu = cpuSeconds();
    const started = now();
    for (let i = 0; i < count; i++) await queue.add("noop", payload());
    const seconds = now() - started;
    report({ rate: count / seconds, seconds, cpu_s: cpuSeconds() - cpu });
  });
}

async function addBulk() {
  await withQueue(async (queue) => {
    await queue.add("noop", payload());
    const calls = Math.max(Math.floor(count / batch), 1);
    const cpu = cpuSeconds();
    const started = now();
    for (let i = 0; i < calls; i++) {
      await queue.addBulk(Array.from({ length: batch }, () => ({ name: "noop", data: payload() })));
    }
    const seconds = now() - started;
    report({ rate: (calls * batch) / seconds, seconds, cpu_s: cpuSeconds() - cpu });
  });
}

async function paced() {
  // Jobs at a steady --rate, each stamped just before its add (start latency).
  const rate = Number(values.rate);
  await withQueue(async (queue) => {
    const started = now();
    for (let i = 0; i < count; i++) {
      const delay = started + i / rate - now();
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay * 1000));
      await queue.add("noop", payload(now()));
    }
    report({ count });
  });
}

async function work(latency) {
  // One Worker at --concurrency; its handler is a no-op or one INCR through ioredis.
  const counter = values.handler === "incr" ? new IORedis(connection) : null;
  const latencies = [];
  let seen = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const cpu = cpuSeconds();
  const started = now();
  const worker = new Worker(
    QUEUE,
    async (job) => {
      if (latency) latencies.push(now() - stampOf(job.data));
      if (counter) await counter.incr("bench:incr");
      seen += 1;
      if (seen >= count) finish();
    },
    { connection, concurrency },
  );
  await worker.waitUntilReady();
  if (latency) process.stdout.write("READY\n");
  await done;
  const handled = now();
  await worker.close();
  const settled = now();
  if (counter) await counter.quit();
  report({
    count: seen,
    seconds: handled - started,
    settled_seconds: settled - started,
    rss_mib: peakRssMiB(),
    cpu_s: cpuSeconds() - cpu,
    concurrency,
    latencies,
  });
}

const modes = {
  prefill,
  add: addSequential,
  "add-bulk": addBulk,
  paced,
  drain: () => work(false),
  latency: () => work(true),
};
if (!(mode in modes)) {
  process.stderr.write(`unknown mode ${mode}; one of ${Object.keys(modes).join(", ")}\n`);
  process.exit(2);
}
await modes[mode]();
process.exit(0);
