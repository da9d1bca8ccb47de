/**
 * At most `limit` calls of a kind at once in this process; the others wait in arrival order,
 * each until its own deadline. Keeps a burst of requests from becoming a burst of updates on
 * one workflow, which Temporal would refuse past its in-flight limit.
 */
export class InFlightGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(deadline: number, timedOut: () => Error, call: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) this.active++;
    else await this.enter(deadline, timedOut);
    try {
      return await call();
    } finally {
      // The slot passes straight to the next in line, or is given up.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  private enter(deadline: number, timedOut: () => Error): Promise<void> {
    return new Promise((resolve, reject) => {
      const admit = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(admit), 1);
        reject(timedOut());
      }, Math.max(0, deadline - Date.now()));
      this.waiting.push(admit);
    });
  }
}
