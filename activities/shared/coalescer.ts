/**
 * Many callers, few runs: a caller that arrives while a run is in progress waits for the
 * next run, which starts after the current one and covers every caller queued by then. Each
 * run must read its input when it starts (the hosts file is rendered from the database then),
 * so 100 concurrent session starts cause a handful of dhcpd restarts, not 100.
 */
export class Coalescer<T> {
  private readonly state = new Map<string, { running: Promise<T>; next?: Promise<T> }>();

  /** `windowMs`: how long a run waits for more callers before it reads its input. */
  constructor(
    private readonly work: (key: string) => Promise<T>,
    private readonly windowMs = 0,
  ) {}

  request(key: string): Promise<T> {
    const current = this.state.get(key);
    if (!current) return this.start(key);
    current.next ??= current.running.then(() => this.start(key), () => this.start(key));
    return current.next;
  }

  private start(key: string): Promise<T> {
    const running = new Promise((resolve) => setTimeout(resolve, this.windowMs)).then(() => this.work(key));
    const entry = { running };
    this.state.set(key, entry);
    const settle = () => {
      if (this.state.get(key) === entry) this.state.delete(key);
    };
    void running.then(settle, settle);
    return running;
  }
}
