// Work deferred to the end of the event loop's turn and done there in one pass.
//
// Under load, one turn of Node's event loop reads many sockets: each ready
// connection's bytes are parsed into a request, one after the other, in the
// poll phase. Answering each /verify request as soon as its body is in
// alternates two large working sets on one core: Node's HTTP parsing and
// stream code, and the verification (the token's checksum and SHA-256, the
// cache, the decision, the answer's JSON) followed by the response's write.
// Each evicts the other from the CPU's caches. Queued here instead, the turn
// parses every request it read, then verifies and answers them back to back
// in the check phase (setImmediate) of the same turn: the same work, with
// warm caches, and the responses' socket writes in a row. Measured on the
// benchmark's load: ~15 µs less server CPU a request, about a third, on a
// guest with small contended caches; within the noise on one with larger
// ones (docs/performance.md, "Answers batched per event-loop turn").
//
// What it costs: a request waits for the other requests read in the same
// turn before its answer is computed, at most one turn (the p50 and p99
// latencies did not move). Alone on a quiet server, a request waits for one
// setImmediate. Jobs run in the order they were queued; a job queued while the
// batch runs waits for the next turn, so a busy turn cannot grow without end.
export class TurnBatch {
  private jobs: (() => void)[] = [];
  /** Each job's way to answer when it throws, by the job's index. */
  private failures: ((error: unknown) => void)[] = [];
  private scheduled = false;

  /**
   * Runs `job` at the end of this turn, with the others queued in it. A job
   * that throws does not stop the rest: `failed` gets its error (the job's
   * own way to answer, so no request is left hanging).
   */
  add(job: () => void, failed: (error: unknown) => void): void {
    this.jobs.push(job);
    this.failures.push(failed);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  /** Jobs waiting for the end of the turn. */
  get pending(): number {
    return this.jobs.length;
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const { jobs, failures } = this;
    this.jobs = [];
    this.failures = [];
    for (let index = 0; index < jobs.length; index++) {
      try {
        jobs[index]!();
      } catch (error) {
        failures[index]!(error);
      }
    }
  };
}
