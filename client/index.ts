/** The taskwire client SDK for browsers and Bun: `connect(url, {token})`, then submit / watch typed tasks. */
export { connect } from "./connection.ts";
export { ConnectionClosedError, RequestRefusedError, TaskCancelledError, TaskFailedError, TaskwireError } from "./errors.ts";
export type { Taskwire } from "./connection.ts";
export type { Issue } from "./errors.ts";
export type { TaskRun } from "./run.ts";
export type {
  CancelledEvent, ConnectOptions, ConnectionState, DefaultTasks, FailedEvent, ProgressEvent, QueuedEvent, ResultEvent,
  SubmitOptions, TaskArgs, TaskEvent, TaskEventType, TaskOptions, TaskRegistry, TaskResult,
} from "./types.ts";
