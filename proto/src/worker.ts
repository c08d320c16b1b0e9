/**
 * A minimal worker loop over WorkerService: claim due jobs, run their handlers
 * at once, settle the outcomes in one call. It shows the protocol; it does not
 * renew leases, so the batch must be settled well within `leaseMs` of the claim
 * (every lease of a claim ends together, and settling confirms a lease: a claim
 * that is run and settled needs no renew). Retries ask for a delay, which the
 * server counts on its own clock: this machine's clock does not matter. A claim
 * or settle that fails rejects: the caller backs off and calls again (the
 * leases of a batch not settled lapse unconfirmed, with no attempt charged).
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
  /** Attempts of a job whose producer set no max_attempts. Default 10, as the server's. */
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
  // Checked before the claim: a bad option found afterwards would abandon leased jobs.
  const maxJobs = whole("maxJobs", options.maxJobs ?? 1);
  const leaseMs = whole("leaseMs", options.leaseMs ?? 30_000);
  const waitMs = whole("waitMs", options.waitMs ?? 0);
  whole("retryDelayMs", options.retryDelayMs ?? 1_000);
  whole("defaultMaxAttempts", options.defaultMaxAttempts ?? DEFAULT_MAX_ATTEMPTS);
  const { leases } = await workers.claimJobs({
    types,
    maxJobs,
    leaseMs: BigInt(leaseMs),
    waitMs: BigInt(waitMs),
  });
  // All at once: their leases end together, so one after another would let the
  // slow ones spend the lease of the rest.
  const outcomes = await Promise.all(
    leases.flatMap(({ job, token }) => (job === undefined ? [] : [run(job, token, options)])),
  );
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
    const result: unknown = await handler(job);
    if (!(result instanceof Uint8Array)) {
      throw new TypeError(`the handler of ${job.type} returned ${typeof result}, not a Uint8Array`);
    }
    return create(OutcomeSchema, { ...base, kind: OutcomeKind.COMPLETE, result });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // 0 (or unset) is the server's "no limit given", as in the Python worker.
    const maxAttempts = job.maxAttempts || options.defaultMaxAttempts || DEFAULT_MAX_ATTEMPTS;
    if (job.attempts >= maxAttempts) {
      return create(OutcomeSchema, { ...base, kind: OutcomeKind.FAIL, error: message });
    }
    const retryDelayMs = BigInt(options.retryDelayMs ?? 1_000);
    return create(OutcomeSchema, { ...base, kind: OutcomeKind.RETRY, error: message, retryDelayMs });
  }
}

/** Attempts of a job that names none: the server's and the Python worker's default. */
const DEFAULT_MAX_ATTEMPTS = 10;

function whole(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`processBatch: ${name} must be a whole number >= 0, got ${value}`);
  }
  return value;
}
