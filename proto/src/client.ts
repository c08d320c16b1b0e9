/**
 * Typed clients of the jobqueue API over gRPC (HTTP/2, plaintext or TLS).
 *
 * ```ts
 * import { connectJobqueue } from "@mpataki/jobqueue-proto";
 *
 * const jq = connectJobqueue("localhost:8080");
 * const { job } = await jq.jobs.enqueueJob({ type: "send_email", payload });
 * jq.close();
 * ```
 */
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { JobService } from "../gen/ts/mpataki/jobqueue/v1/jobqueue_pb.js";
import { WorkerService } from "../gen/ts/mpataki/jobqueue/v1/worker_pb.js";

/** A client of `mpataki.jobqueue.v1.JobService`: submit, inspect and cancel jobs. */
export type JobServiceClient = Client<typeof JobService>;

/** A client of `mpataki.jobqueue.v1.WorkerService`: claim, settle and renew leased jobs. */
export type WorkerServiceClient = Client<typeof WorkerService>;

export interface JobqueueClientOptions {
  /** Deadline of every call unless the call sets its own `timeoutMs`. */
  readonly defaultTimeoutMs?: number;
  /** Interceptors run around every call (auth headers, logging, ...). */
  readonly interceptors?: Interceptor[];
  /** Use TLS (`https://`) when `address` is a bare `host:port`. Default: plaintext. */
  readonly tls?: boolean;
}

/** A transport and the HTTP/2 session under it; `close()` ends the session. */
export interface JobqueueTransport {
  readonly transport: Transport;
  close(): void;
}

/** Both clients of one server, sharing one HTTP/2 session. */
export interface JobqueueConnection {
  readonly jobs: JobServiceClient;
  readonly workers: WorkerServiceClient;
  /** Ends the HTTP/2 session; calls still in flight fail. */
  close(): void;
}

/**
 * The base URL of a server address: `host:port`, `[::1]:port`, or a full
 * `http://` / `https://` URL, which is kept as given.
 */
export function toBaseUrl(address: string, tls = false): string {
  if (/^https?:\/\//.test(address)) {
    return address.replace(/\/+$/, "");
  }
  if (!/^(\[[0-9A-Fa-f:.]+\]|[^:/\s]+):\d{1,5}$/.test(address)) {
    throw new TypeError(`not a host:port address: ${JSON.stringify(address)}`);
  }
  return `${tls ? "https" : "http"}://${address}`;
}

/** A gRPC transport to the server at `address` (see {@link toBaseUrl}). */
export function createJobqueueTransport(
  address: string,
  options: JobqueueClientOptions = {},
): JobqueueTransport {
  const baseUrl = toBaseUrl(address, options.tls);
  // Our own session manager, so that close() can end the HTTP/2 session and
  // let the process exit instead of waiting for the idle timeout.
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager,
    defaultTimeoutMs: options.defaultTimeoutMs,
    interceptors: options.interceptors,
  });
  return { transport, close: () => sessionManager.abort() };
}

/** A JobService client on `transport`. */
export function createJobServiceClient(transport: Transport): JobServiceClient {
  return createClient(JobService, transport);
}

/** A WorkerService client on `transport`. */
export function createWorkerServiceClient(transport: Transport): WorkerServiceClient {
  return createClient(WorkerService, transport);
}

/** Both clients of the server at `address` (`host:port`), over one HTTP/2 session. */
export function connectJobqueue(
  address: string,
  options: JobqueueClientOptions = {},
): JobqueueConnection {
  const { transport, close } = createJobqueueTransport(address, options);
  return {
    jobs: createJobServiceClient(transport),
    workers: createWorkerServiceClient(transport),
    close,
  };
}
