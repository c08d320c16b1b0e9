"""Generated messages and gRPC stubs of the jobqueue API, package ``mpataki.jobqueue.v1``.

Import the modules: ``jobqueue_pb2`` / ``jobqueue_pb2_grpc`` (JobService),
``admin_pb2`` / ``admin_pb2_grpc`` (AdminService) and
``worker_pb2`` / ``worker_pb2_grpc`` (WorkerService). Everything but this file
is generated from ``proto/`` by ``uv run python scripts/gen_protos.py``; do not
edit it by hand.
"""
