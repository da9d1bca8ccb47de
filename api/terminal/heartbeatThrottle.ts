/**
 * At most one heartbeat per session per interval reaches the session's workflow, whether it
 * comes over the WebSocket or the HTTP route. A heartbeat is an update with a history event:
 * more than one per interval would only grow the history (and the load on Temporal) without
 * moving the idle deadline meaningfully. Per api process; the interval is far below the idle
 * timeout (the configuration enforces at most half), so a throttled client never goes idle.
 */
export class HeartbeatThrottle {
  private readonly admitted = new Map<string, number>();
  private prunedAt = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when this heartbeat may go to the workflow (and counts as the session's latest). */
  admit(sessionId: string): boolean {
    const now = this.now();
    const last = this.admitted.get(sessionId);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.admitted.set(sessionId, now);
    this.prune(now);
    return true;
  }

  // Forget sessions whose interval has passed, at most once per interval: memory stays bounded
  // by the sessions heartbeating now, and the sweep costs nothing per heartbeat.
  private prune(now: number): void {
    if (now - this.prunedAt < this.intervalMs) return;
    this.prunedAt = now;
    for (const [sessionId, at] of this.admitted) if (now - at >= this.intervalMs) this.admitted.delete(sessionId);
  }
}
