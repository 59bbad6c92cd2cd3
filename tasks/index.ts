/** The task registry: every task a worker can run and a server will accept. Add a file, add a line. */
import countdown from "./countdown.ts";
import fail from "./fail.ts";
import test_task from "./test_task.ts";
import type { TaskDefinition } from "./define.ts";

export const tasks = { test_task, countdown, fail } as const;

/** Name -> definition; the client SDK infers args and result types from this. */
export type Tasks = typeof tasks;
export type TaskName = keyof Tasks;

export function getTask(name: string): TaskDefinition | undefined {
  return Object.hasOwn(tasks, name) ? (tasks as Record<string, TaskDefinition>)[name] : undefined;
}
