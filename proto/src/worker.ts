/**
 * A minimal worker loop over WorkerService: claim due jobs, run a handler,
 * settle the outcome. It shows the protocol; it does not renew leases, so
 * handlers must finish well within `leaseMs` (settling confirms a lease, so a
 * claim that is run and settled needs no renew). Retries ask for a delay, which
 * the server counts on its own clock: this machine's clock does not matter.
 */
import { create } from "@bufbuild/protobuf";

import type { Job } from "../gen/ts/mpataki/jobqueue/v1/jobqueue_pb.js";
import { OutcomeKind, OutcomeSchema, type Outcome } from "../gen/ts/mpataki/jobqueue/v1/worker_pb.js";
import type { WorkerServiceClient } from "./client.js";

/** Runs one job; returns its result, or throws to fail the attempt. */
export type JobHandler = (job: Job) => Promise<Uint8Array> | Uint8Array;

export interface ProcessBatchOptions {
  /** Handlers by job type; the worker claims only these types. */
  readonly handlers: Readonly<Record<string, JobHandler>>;
  /** At most this many jobs per claim. Default 1. */
  readonly maxJobs?: number;
  /** Lease of each claimed job. Default 30 s. */
  readonly leaseMs?: number;
  /** How long the server may wait for a due job. Default 0: answer at once. */
  readonly waitMs?: number;
  /** Attempts of a job whose producer set no max_attempts. Default 3. */
  readonly defaultMaxAttempts?: number;
  /** Backoff before a failed attempt runs again. Default 1 s. */
  readonly retryDelayMs?: number;
}

/** What one claim-run-settle round did, per job id. */
export interface BatchReport {
  readonly settled: ReadonlyMap<string, { kind: OutcomeKind; accepted: boolean }>;
}

/** Claims one batch of jobs, runs each with its handler, settles them all in one call. */
export async function processBatch(
  workers: WorkerServiceClient,
  options: ProcessBatchOptions,
): Promise<BatchReport> {
  const types = Object.keys(options.handlers);
  if (types.length === 0) {
    throw new TypeError("processBatch needs at least one handler");
  }
  const { leases } = await workers.claimJobs({
    types,
    maxJobs: options.maxJobs ?? 1,
    leaseMs: BigInt(options.leaseMs ?? 30_000),
    waitMs: BigInt(options.waitMs ?? 0),
  });
  const outcomes: Outcome[] = [];
  for (const { job, token } of leases) {
    if (job === undefined) {
      continue;
    }
    outcomes.push(await run(job, token, options));
  }
  if (outcomes.length === 0) {
    return { settled: new Map() };
  }
  const { accepted } = await workers.settleJobs({ outcomes });
  return {
    settled: new Map(
      outcomes.map((o, i) => [o.jobId, { kind: o.kind, accepted: accepted[i] ?? false }]),
    ),
  };
}

async function run(job: Job, token: string, options: ProcessBatchOptions): Promise<Outcome> {
  const base = { jobId: job.id, token };
  const handler = options.handlers[job.type];
  try {
    if (handler === undefined) {
      throw new Error(`no handler for job type ${job.type}`);
    }
    const result = await handler(job);
    return create(OutcomeSchema, { ...base, kind: OutcomeKind.COMPLETE, result });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const maxAttempts = job.maxAttempts ?? options.defaultMaxAttempts ?? 3;
    if (job.attempts >= maxAttempts) {
      return create(OutcomeSchema, { ...base, kind: OutcomeKind.FAIL, error: message });
    }
    const retryDelayMs = BigInt(options.retryDelayMs ?? 1_000);
    return create(OutcomeSchema, { ...base, kind: OutcomeKind.RETRY, error: message, retryDelayMs });
  }
}
