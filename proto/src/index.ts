// The TypeScript face of the jobqueue API: typed clients and a minimal worker
// loop over the code protoc-gen-es generates from mpataki/jobqueue/v1.
export {
  connectJobqueue,
  createAdminServiceClient,
  createJobqueueTransport,
  createJobServiceClient,
  createScheduleServiceClient,
  createWorkerServiceClient,
  toBaseUrl,
  type JobqueueClientOptions,
  type JobqueueConnection,
  type JobqueueProtocol,
  type JobqueueTransport,
  type AdminServiceClient,
  type JobServiceClient,
  type ScheduleServiceClient,
  type WorkerServiceClient,
} from "./client.js";
export { processBatch, type BatchReport, type JobHandler, type ProcessBatchOptions } from "./worker.js";
// Failed calls reject with a ConnectError whose code is the gRPC status: re-exported
// so a caller compares codes without a dependency of its own on @connectrpc/connect.
export { Code, ConnectError } from "@connectrpc/connect";
export * from "../gen/ts/mpataki/jobqueue/v1/jobqueue_pb.js";
export * from "../gen/ts/mpataki/jobqueue/v1/worker_pb.js";
export * from "../gen/ts/mpataki/jobqueue/v1/schedule_pb.js";
export * from "../gen/ts/mpataki/jobqueue/v1/admin_pb.js";
