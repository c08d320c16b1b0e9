// End to end from a second language: starts our server (in-memory store),
// then drives JobService and WorkerService through the TypeScript client.
//
// The server command is `uv run jobqueue-server` from the repository root;
// JOBQUEUE_SERVER_BIN, when set, names the console script to run instead
// (tests/e2e/test_typescript_client.py passes the one of its environment).
// JOBQUEUE_SERVER (`host:port` or an `http(s)://` URL), when set, targets a
// server that is already running instead of starting one, with
// JOBQUEUE_AUTH_TOKEN as its bearer token if it requires one. Every job type
// carries this run's id, so a shared server's other jobs never interfere.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Code, ConnectError } from "@connectrpc/connect";

import type { Interceptor } from "@connectrpc/connect";

import {
  connectJobqueue,
  JobStatus,
  OutcomeKind,
  OverlapPolicy,
  processBatch,
  type JobqueueClientOptions,
  type JobqueueConnection,
} from "../src/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const STARTUP_TIMEOUT_MS = 60_000;
const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);
const RUN = randomUUID().slice(0, 8);
const type = (name: string) => `ts.${name}.${RUN}`;
const RUNNING_SERVER = process.env.JOBQUEUE_SERVER;
const TOKEN = process.env.JOBQUEUE_AUTH_TOKEN;
const auth: Interceptor[] = TOKEN
  ? [
      (next) => async (request) => {
        request.header.set("authorization", `Bearer ${TOKEN}`);
        return await next(request);
      },
    ]
  : [];

let server: ChildProcess | undefined;
let serverOutput = "";
let jq: JobqueueConnection;
let address = "";

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const address = probe.address();
  probe.close();
  assert.ok(address !== null && typeof address === "object");
  return address.port;
}

function serverCommand(port: number): [string, string[]] {
  const args = ["--host", "127.0.0.1", "--port", String(port)];
  const bin = process.env.JOBQUEUE_SERVER_BIN;
  return bin ? [bin, args] : ["uv", ["run", "jobqueue-server", ...args]];
}

async function waitForServer(): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (server !== undefined && server.exitCode !== null) {
      throw new Error(`server exited with ${server.exitCode}:\n${serverOutput}`);
    }
    try {
      await jq.jobs.getQueueStats({}, { timeoutMs: 1_000 });
      return;
    } catch (error) {
      // Refused is an answer: a wrong or missing token will not improve with time.
      if (error instanceof ConnectError && error.code === Code.Unauthenticated) {
        throw new Error(`the server refused the token (${error.message})`);
      }
      if (Date.now() > deadline) {
        throw new Error(`server did not answer in time (${String(error)}):\n${serverOutput}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

before(async () => {
  if (RUNNING_SERVER) {
    address = RUNNING_SERVER;
    jq = connectJobqueue(address, { defaultTimeoutMs: 10_000, interceptors: auth });
    await waitForServer();
    return;
  }
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, JOBQUEUE_SHUTDOWN_GRACE_S: "2" };
  // The embedded in-memory store: no Redis settings may leak in.
  for (const name of ["JOBQUEUE_REDIS_URL", "JOBQUEUE_REDIS_ADDR", "REDIS_ADDR"]) {
    delete env[name];
  }
  const [command, args] = serverCommand(port);
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  server = child;
  child.stdout?.on("data", (chunk: Buffer) => (serverOutput += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (serverOutput += chunk.toString()));
  address = `127.0.0.1:${port}`;
  jq = connectJobqueue(address, { defaultTimeoutMs: 10_000, interceptors: auth });
  await waitForServer();
});

after(async () => {
  jq?.close();
  const child = server;
  if (child === undefined || child.exitCode !== null) {
    return;
  }
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  assert.equal(code, 0, `server stopped with ${code ?? signal}:\n${serverOutput}`);
});

test("enqueue, read back and cancel a job", async () => {
  const payload = encode('{"to":"test@example.com"}');
  const later = BigInt(Date.now() + 3_600_000);
  const { job } = await jq.jobs.enqueueJob({ type: type("send_email"), payload, executionTimeMs: later });
  assert.ok(job);
  assert.ok(job.id.length > 0);
  assert.equal(job.status, JobStatus.PENDING);
  assert.equal(job.executionTimeMs, later);

  const { job: read } = await jq.jobs.getJob({ id: job.id });
  assert.ok(read);
  assert.equal(read.id, job.id);
  assert.equal(read.type, type("send_email"));
  // Compared as plain arrays: the client may hand back a Buffer, a Uint8Array subclass.
  assert.deepEqual(Uint8Array.from(read.payload), payload);
  assert.equal(read.status, JobStatus.PENDING);

  const { job: cancelled } = await jq.jobs.cancelJob({ id: job.id });
  assert.equal(cancelled?.status, JobStatus.CANCELLED);
  const { job: after } = await jq.jobs.getJob({ id: job.id });
  assert.equal(after?.status, JobStatus.CANCELLED);

  // Errors arrive as ConnectError with the gRPC status code.
  await assert.rejects(jq.jobs.cancelJob({ id: job.id }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.FailedPrecondition);
    return true;
  });
  await assert.rejects(jq.jobs.getJob({ id: randomUUID() }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.NotFound);
    return true;
  });
  await assert.rejects(jq.jobs.getJob({ id: "not-a-job-id" }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.InvalidArgument);
    return true;
  });
});

test("a TypeScript worker claims a job and completes it with a result", async () => {
  const { job } = await jq.jobs.enqueueJob({ type: type("reverse"), payload: encode("hello") });
  assert.ok(job);
  // WatchJob streams the job until it ends; started before the work happens.
  const watched = (async () => {
    const statuses: JobStatus[] = [];
    for await (const { job: seen } of jq.jobs.watchJob({ id: job.id }, { timeoutMs: 30_000 })) {
      if (seen) statuses.push(seen.status);
    }
    return statuses;
  })();

  const report = await processBatch(jq.workers, {
    handlers: { [type("reverse")]: (claimed) => encode(decode(claimed.payload).split("").reverse().join("")) },
    waitMs: 5_000,
  });
  assert.deepEqual([...report.settled], [[job.id, { kind: OutcomeKind.COMPLETE, accepted: true }]]);

  const { job: done } = await jq.jobs.getJob({ id: job.id });
  assert.ok(done);
  assert.equal(done.status, JobStatus.COMPLETED);
  assert.equal(decode(done.result), "olleh");
  assert.equal(done.attempts, 1);
  const statuses = await watched;
  assert.equal(statuses.at(-1), JobStatus.COMPLETED);
});

test("a handler that throws on the last attempt ends the job FAILED", async () => {
  const { job } = await jq.jobs.enqueueJob({ type: type("broken"), payload: encode("x"), maxAttempts: 1 });
  assert.ok(job);
  const report = await processBatch(jq.workers, {
    handlers: {
      [type("broken")]: () => {
        throw new Error("boom");
      },
    },
    waitMs: 5_000,
  });
  assert.deepEqual(report.settled.get(job.id), { kind: OutcomeKind.FAIL, accepted: true });
  const { job: failed } = await jq.jobs.getJob({ id: job.id });
  assert.equal(failed?.status, JobStatus.FAILED);
  assert.equal(failed?.lastError, "boom");
});

test("a batch runs its handlers at once, and a handler that returns no bytes fails its job", async () => {
  const slow = type("slow");
  const odd = type("odd");
  const { jobs } = await jq.jobs.enqueueJobs({
    jobs: [
      { type: slow, payload: encode("a"), maxAttempts: 1 },
      { type: slow, payload: encode("b"), maxAttempts: 1 },
      { type: odd, payload: encode("c"), maxAttempts: 1 },
    ],
  });
  let running = 0;
  let most = 0;
  const report = await processBatch(jq.workers, {
    handlers: {
      [slow]: async (claimed) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 200));
        running -= 1;
        return claimed.payload;
      },
      // A JavaScript handler may return anything: the job fails, the batch is settled.
      [odd]: () => "not bytes" as unknown as Uint8Array,
    },
    maxJobs: 3,
    waitMs: 5_000,
  });
  assert.equal(report.settled.size, 3);
  assert.equal(most, 2);
  const [, , oddJob] = jobs;
  assert.deepEqual(report.settled.get(oddJob!.id), { kind: OutcomeKind.FAIL, accepted: true });
  const { job: failed } = await jq.jobs.getJob({ id: oddJob!.id });
  assert.match(failed?.lastError ?? "", /returned string, not a Uint8Array/);
});

test("a bad option is refused before anything is claimed", async () => {
  const { job } = await jq.jobs.enqueueJob({ type: type("untouched"), payload: encode("x") });
  assert.ok(job);
  for (const bad of [{ retryDelayMs: 1.5 }, { leaseMs: Number.NaN }, { maxJobs: -1 }]) {
    await assert.rejects(
      processBatch(jq.workers, { handlers: { [type("untouched")]: () => encode("") }, ...bad }),
      RangeError,
    );
  }
  const { job: still } = await jq.jobs.getJob({ id: job.id });
  assert.equal(still?.status, JobStatus.PENDING);
  assert.equal(still?.attempts, 0);
});

test("an idle claim answers with no leases", async () => {
  const report = await processBatch(jq.workers, { handlers: { [type("nothing")]: () => encode("") } });
  assert.equal(report.settled.size, 0);
});

// The server answers every protocol on its one port: each transport a browser
// or another service might pick gets the same answers, streaming included.
const TRANSPORTS: [string, JobqueueClientOptions][] = [
  ["Connect over HTTP/1.1", { protocol: "connect", httpVersion: "1.1" }],
  ["Connect with JSON over HTTP/1.1", { protocol: "connect", httpVersion: "1.1", json: true }],
  ["Connect over HTTP/2", { protocol: "connect", httpVersion: "2" }],
  ["gRPC-Web over HTTP/1.1", { protocol: "grpc-web", httpVersion: "1.1" }],
  ["gRPC-Web over HTTP/2", { protocol: "grpc-web", httpVersion: "2" }],
];

for (const [name, options] of TRANSPORTS) {
  test(`${name}: enqueue, read, watch, cancel, and the error codes`, async () => {
    const client = connectJobqueue(address, { ...options, defaultTimeoutMs: 10_000, interceptors: auth });
    try {
      const payload = encode(`{"via":"${name}"}`);
      const later = BigInt(Date.now() + 3_600_000);
      const { job } = await client.jobs.enqueueJob({ type: type("wire"), payload, executionTimeMs: later });
      assert.ok(job);
      const { job: read } = await client.jobs.getJob({ id: job.id });
      assert.equal(decode(read?.payload), decode(payload));
      assert.equal(read?.status, JobStatus.PENDING);

      // WatchJob streams: the job now, then its end once cancelled.
      const statuses: JobStatus[] = [];
      const watched = (async () => {
        for await (const { job: seen } of client.jobs.watchJob({ id: job.id }, { timeoutMs: 30_000 })) {
          if (seen) statuses.push(seen.status);
          if (statuses.length === 1) {
            await client.jobs.cancelJob({ id: job.id });
          }
        }
      })();
      await watched;
      assert.equal(statuses[0], JobStatus.PENDING);
      assert.equal(statuses.at(-1), JobStatus.CANCELLED);

      const codes: [() => Promise<unknown>, Code][] = [
        [() => client.jobs.cancelJob({ id: job.id }), Code.FailedPrecondition],
        [() => client.jobs.getJob({ id: randomUUID() }), Code.NotFound],
        [() => client.jobs.getJob({ id: "not-a-job-id" }), Code.InvalidArgument],
        [() => client.jobs.enqueueJob({ type: "", payload }), Code.InvalidArgument],
      ];
      for (const [call, code] of codes) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof ConnectError);
          assert.equal(error.code, code, `${name}: ${error.message}`);
          return true;
        });
      }
    } finally {
      client.close();
    }
  });
}

test("limit keys: a keyed job keeps its key; per-key limits round trip through AdminService", async () => {
  const jobType = type("tenant");
  const { limits } = await jq.admin.setTypeLimits({
    type: jobType,
    limits: { keyConcurrency: 2, keyRate: 50, keyRateIntervalMs: 1_000n },
  });
  assert.equal(limits?.keyConcurrency, 2);
  assert.equal(limits?.keyRate, 50);
  const { job } = await jq.jobs.enqueueJob({ type: jobType, limitKey: "acme" });
  assert.equal(job?.limitKey, "acme");
  const { job: read } = await jq.jobs.getJob({ id: job?.id ?? "" });
  assert.equal(read?.limitKey, "acme");
  await assert.rejects(jq.jobs.enqueueJob({ type: jobType, limitKey: "has space" }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.InvalidArgument);
    return true;
  });
  await jq.jobs.cancelJob({ id: job?.id ?? "" });
});

test("schedules: a retried create or trigger with its idempotency key does its work once", async () => {
  const request = {
    schedule: {
      name: "ts keyed",
      spec: { case: "intervalMs" as const, value: 3_600_000n },
      template: { type: type("keyed"), priority: 5 },
    },
    idempotencyKey: `create-${type("k")}`,
  };
  const { schedule } = await jq.schedules.createSchedule(request);
  const { schedule: again } = await jq.schedules.createSchedule(request);
  assert.ok(schedule);
  assert.equal(again?.id, schedule.id);
  assert.equal(schedule.template?.priority, 5);
  const trigger = { id: schedule.id, idempotencyKey: "trigger-1" };
  const { jobId } = await jq.schedules.triggerSchedule(trigger);
  const { jobId: sameJob } = await jq.schedules.triggerSchedule(trigger);
  assert.equal(sameJob, jobId);
  const { job } = await jq.jobs.getJob({ id: jobId });
  assert.equal(job?.priority, 5);
  await jq.schedules.deleteSchedule({ id: schedule.id });
});

test("schedules: create, read, pause, resume, trigger and delete through ScheduleService", async () => {
  const { schedule } = await jq.schedules.createSchedule({
    schedule: {
      name: "ts nightly",
      spec: { case: "cron", value: "30 2 * * *" },
      timeZone: "Europe/Paris",
      template: { type: type("nightly"), payload: encode("{}"), headers: { tenant: "acme" } },
      overlap: OverlapPolicy.BUFFER_ONE,
      catchupWindowMs: 300_000n,
    },
  });
  assert.ok(schedule);
  assert.deepEqual(schedule.spec, { case: "cron", value: "30 2 * * *" });
  assert.equal(schedule.overlap, OverlapPolicy.BUFFER_ONE);
  assert.equal(schedule.catchupWindowMs, 300_000n);
  assert.equal(schedule.template?.headers.tenant, "acme");

  const { schedules } = await jq.schedules.listSchedules({});
  assert.ok(schedules.some((found) => found.id === schedule.id));
  const { schedule: paused } = await jq.schedules.pauseSchedule({ id: schedule.id });
  assert.equal(paused?.paused, true);
  const { schedule: resumed } = await jq.schedules.resumeSchedule({ id: schedule.id });
  assert.equal(resumed?.paused, false);

  const { jobId } = await jq.schedules.triggerSchedule({ id: schedule.id });
  const { job } = await jq.jobs.getJob({ id: jobId });
  assert.equal(job?.type, type("nightly"));

  await jq.schedules.deleteSchedule({ id: schedule.id });
  await assert.rejects(jq.schedules.getSchedule({ id: schedule.id }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.NotFound);
    return true;
  });
  await assert.rejects(
    jq.schedules.createSchedule({
      schedule: { name: "bad", spec: { case: "cron", value: "61 * * * *" }, template: { type: type("bad") } },
    }),
    (error: unknown) => {
      assert.ok(error instanceof ConnectError);
      assert.equal(error.code, Code.InvalidArgument);
      assert.match(error.rawMessage, /^cron: /);
      return true;
    },
  );
});
