/**
 * Typed clients of the jobqueue API over gRPC, the Connect protocol or gRPC-Web
 * (the server answers all three on one port), plaintext or TLS.
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
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";

import { AdminService } from "../gen/ts/mpataki/jobqueue/v1/admin_pb.js";
import { JobService } from "../gen/ts/mpataki/jobqueue/v1/jobqueue_pb.js";
import { ScheduleService } from "../gen/ts/mpataki/jobqueue/v1/schedule_pb.js";
import { WorkerService } from "../gen/ts/mpataki/jobqueue/v1/worker_pb.js";

/** A client of `mpataki.jobqueue.v1.JobService`: submit, inspect and cancel jobs. */
export type JobServiceClient = Client<typeof JobService>;

/** A client of `mpataki.jobqueue.v1.WorkerService`: claim, settle and renew leased jobs. */
export type WorkerServiceClient = Client<typeof WorkerService>;

/** A client of `mpataki.jobqueue.v1.ScheduleService`: create and manage recurring schedules. */
export type ScheduleServiceClient = Client<typeof ScheduleService>;

/** A client of `mpataki.jobqueue.v1.AdminService`: retry, delete and bulk actions, pauses, workers. */
export type AdminServiceClient = Client<typeof AdminService>;

export interface JobqueueClientOptions {
  /** Deadline of every call unless the call sets its own `timeoutMs`. */
  readonly defaultTimeoutMs?: number;
  /** Interceptors run around every call (auth headers, logging, ...). */
  readonly interceptors?: Interceptor[];
  /** Use TLS (`https://`) when `address` is a bare `host:port`. Default: plaintext. */
  readonly tls?: boolean;
  /**
   * The wire protocol. Default `"grpc"` (HTTP/2). `"connect"` and `"grpc-web"`
   * also run over HTTP/1.1, through proxies that speak nothing else, and
   * `"connect"` is what the Go original's CLI sends.
   */
  readonly protocol?: JobqueueProtocol;
  /** HTTP version of `"connect"` and `"grpc-web"` (gRPC is always HTTP/2). Default `"2"`. */
  readonly httpVersion?: "1.1" | "2";
  /** Send JSON instead of binary protobuf (`"connect"` and `"grpc-web"` only). Default: binary. */
  readonly json?: boolean;
}

/** The protocols the server speaks on its one port. */
export type JobqueueProtocol = "grpc" | "connect" | "grpc-web";

/** A transport and the HTTP/2 session under it (if any); `close()` ends the session. */
export interface JobqueueTransport {
  readonly transport: Transport;
  close(): void;
}

/** The clients of one server's services, sharing one HTTP/2 session. */
export interface JobqueueConnection {
  readonly jobs: JobServiceClient;
  readonly workers: WorkerServiceClient;
  readonly schedules: ScheduleServiceClient;
  readonly admin: AdminServiceClient;
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

/** A transport to the server at `address` (see {@link toBaseUrl}), by `options.protocol`. */
export function createJobqueueTransport(
  address: string,
  options: JobqueueClientOptions = {},
): JobqueueTransport {
  const baseUrl = toBaseUrl(address, options.tls);
  const protocol = options.protocol ?? "grpc";
  const common = {
    baseUrl,
    defaultTimeoutMs: options.defaultTimeoutMs,
    interceptors: options.interceptors,
  };
  if (protocol !== "grpc" && options.httpVersion === "1.1") {
    const http1 = { ...common, httpVersion: "1.1" as const, useBinaryFormat: !options.json };
    const transport = protocol === "connect" ? createConnectTransport(http1) : createGrpcWebTransport(http1);
    // Node's HTTP/1.1 agent keeps no session of ours to end.
    return { transport, close: () => undefined };
  }
  // Our own session manager, so that close() can end the HTTP/2 session and
  // let the process exit instead of waiting for the idle timeout.
  const sessionManager = new Http2SessionManager(baseUrl);
  const http2 = { ...common, httpVersion: "2" as const, sessionManager };
  let transport: Transport;
  if (protocol === "grpc") {
    transport = createGrpcTransport(http2);
  } else {
    const options2 = { ...http2, useBinaryFormat: !options.json };
    transport = protocol === "connect" ? createConnectTransport(options2) : createGrpcWebTransport(options2);
  }
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

/** A ScheduleService client on `transport`. */
export function createScheduleServiceClient(transport: Transport): ScheduleServiceClient {
  return createClient(ScheduleService, transport);
}

/** An AdminService client on `transport`. */
export function createAdminServiceClient(transport: Transport): AdminServiceClient {
  return createClient(AdminService, transport);
}

/** The clients of the server at `address` (`host:port`), over one HTTP/2 session. */
export function connectJobqueue(
  address: string,
  options: JobqueueClientOptions = {},
): JobqueueConnection {
  const { transport, close } = createJobqueueTransport(address, options);
  return {
    jobs: createJobServiceClient(transport),
    workers: createWorkerServiceClient(transport),
    schedules: createScheduleServiceClient(transport),
    admin: createAdminServiceClient(transport),
    close,
  };
}
