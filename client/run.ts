/**
 * One task as the client sees it: its id, its events (async iteration or listeners), its result and
 * cancel. The connection feeds it frames; it drops any event whose seq it has already seen.
 */
import { TaskCancelledError, TaskFailedError, type TaskwireError } from "./errors.ts";
import type { TaskEvent, TaskEventType } from "./types.ts";

type Listener<E> = (event: E) => void;
type EventOf<R, K extends TaskEventType | "event"> = K extends "event" ? TaskEvent<R> : Extract<TaskEvent<R>, { type: K }>;

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void, reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  // Marked handled: a caller who only iterates, or never asks for the id, gets no unhandled rejection.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

export class TaskRun<R = unknown> implements AsyncIterable<TaskEvent<R>> {
  /** The server's task id: resolves on `accepted` (at once for watch(id)); rejects if the submit is refused. */
  readonly id: Promise<string>;
  /** The task's return value; rejects with TaskFailedError, TaskCancelledError, RequestRefusedError or ConnectionClosedError. */
  readonly result: Promise<R>;
  /** The id once known, else undefined (the synchronous twin of `id`). */
  taskId: string | undefined;
  /** Highest seq received: what a resubscribe after a reconnect asks to resume after. */
  lastSeq: number;
  /** True once a terminal event arrived or the run was refused or closed. */
  done = false;
  /** @internal set by cancel(); the connection (re)sends the cancel once the id is known and a socket is open. */
  cancelWanted = false;

  private readonly idP = deferred<string>();
  private readonly resultP = deferred<R>();
  private readonly events: TaskEvent<R>[] = [];
  private readonly wakers = new Set<() => void>();
  private readonly listeners = new Map<string, Set<Listener<any>>>();
  private failure: TaskwireError | undefined;

  /** @internal runs are made by Taskwire.submit() and Taskwire.watch(). */
  constructor(
    readonly task: string | undefined,
    private readonly onCancel: (run: TaskRun<R>) => void,
    id?: string,
    after = 0,
  ) {
    this.id = this.idP.promise;
    this.result = this.resultP.promise;
    this.lastSeq = after;
    if (id !== undefined) this.accept(id);
  }

  /** Events from the first one received, then live ones; ends after the terminal event (throws if refused or closed). */
  async *[Symbol.asyncIterator](): AsyncIterator<TaskEvent<R>> {
    let i = 0;
    for (;;) {
      while (i < this.events.length) yield this.events[i++]!;
      if (this.done) {
        if (this.failure) throw this.failure;
        return;
      }
      await new Promise<void>((wake) => this.wakers.add(wake));
    }
  }

  /** Calls fn for each later event of that type ("event": every type); returns a function that stops it. */
  on<K extends TaskEventType | "event">(type: K, fn: Listener<EventOf<R, K>>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Asks the server to cancel the task (sent once the id is known and a socket is open, again after a reconnect). The outcome arrives as the `cancelled` event, or the result if it finished first. */
  cancel(): void {
    if (this.done || this.cancelWanted) return;
    this.cancelWanted = true;
    this.onCancel(this);
  }

  /** @internal */
  accept(id: string): void {
    this.taskId = id;
    this.idP.resolve(id);
  }

  /** @internal a task event from the wire; returns false when it was a duplicate. */
  event(e: TaskEvent<R>): boolean {
    if (this.done || e.seq <= this.lastSeq) return false;
    this.lastSeq = e.seq;
    this.events.push(e);
    if (e.type === "result") this.finish(() => this.resultP.resolve(e.result));
    else if (e.type === "failed") this.finish(() => this.resultP.reject(new TaskFailedError(e.id, e.error?.code ?? "task_error", e.error?.message ?? "task failed")));
    else if (e.type === "cancelled") this.finish(() => this.resultP.reject(new TaskCancelledError(e.id)));
    this.emit(e);
    this.wake();
    return true;
  }

  /** @internal the request was refused, or the connection closed for good. */
  fail(err: TaskwireError): void {
    if (this.done) return;
    this.failure = err;
    this.finish(() => {
      this.idP.reject(err);
      this.resultP.reject(err);
    });
    this.wake();
  }

  private finish(settle: () => void): void {
    this.done = true;
    settle();
  }

  private emit(e: TaskEvent<R>): void {
    for (const type of [e.type, "event"]) {
      for (const fn of this.listeners.get(type) ?? []) {
        try {
          fn(e);
        } catch (err) {
          // A listener's bug must not stop delivery to the others, nor hide: report it as uncaught.
          setTimeout(() => {
            throw err;
          });
        }
      }
    }
  }

  private wake(): void {
    for (const w of this.wakers) w();
    this.wakers.clear();
  }
}
