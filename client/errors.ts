/** The errors the SDK rejects with: each carries a stable `code` (PROTOCOL.md's codes, or "cancelled"/"closed"). */

export interface Issue {
  path: (string | number)[];
  message: string;
}

export class TaskwireError extends Error {
  override name = "TaskwireError";
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** The task ran and ended `failed`; code is "task_error", "timeout" or "exhausted". */
export class TaskFailedError extends TaskwireError {
  override name = "TaskFailedError";
  constructor(readonly id: string, code: string, message: string) {
    super(code, message);
  }
}

/** The task ended `cancelled` (by run.cancel(), DELETE /tasks/<id>, or anyone else). */
export class TaskCancelledError extends TaskwireError {
  override name = "TaskCancelledError";
  constructor(readonly id: string) {
    super("cancelled", `task ${id} was cancelled`);
  }
}

/**
 * The server refused the request: unknown_task, invalid_args (see `issues`), not_found, rate_limited,
 * limit_exceeded, unavailable (Redis down; the task was not stored), unauthorized, too_large, ...
 */
export class RequestRefusedError extends TaskwireError {
  override name = "RequestRefusedError";
  constructor(code: string, message: string, readonly issues?: Issue[]) {
    super(code, message);
  }
}

/** tw.close() was called while the run was still live; the task itself keeps running on the server. */
export class ConnectionClosedError extends TaskwireError {
  override name = "ConnectionClosedError";
  constructor() {
    super("closed", "the taskwire connection was closed before the task ended (the task keeps running; watch(id) it again)");
  }
}
