/** The schedule API: importing this module registers every primitive family. */
import "./loop_transformation.ts";
import "./for_kind.ts";
import "./cache_read_write.ts";
import "./compute_at.ts";
import "./reduction.ts";
import "./tensorize.ts";
export { Schedule, replay, traceToJson, traceFromJson, type Trace, type TraceStep } from "./schedule.ts";
export { ScheduleError, TargetUnsupportedError } from "./errors.ts";
