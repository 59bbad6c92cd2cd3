/** Preload for measuring only: turns on ioredis auto-pipelining for every client the process creates (lib/ leaves it off). */
import Redis, { type RedisOptions } from "ioredis";

// `defaultOptions` is private in ioredis' types but is what every new client is filled from.
(Redis as unknown as { defaultOptions: RedisOptions }).defaultOptions.enableAutoPipelining = true;
if (process.env.BENCH_PRELOAD_VERBOSE) console.error("bench: ioredis enableAutoPipelining on");
